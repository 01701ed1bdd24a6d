/**
 * Runs a real single-member etcd 3.4 server (Debian's etcd-server package) for tests: on
 * loopback, on free ports, with a data directory of the test's own, and every ETCD_* variable
 * of the caller removed.
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { Buffer } from "node:buffer";

function findEtcd(): string | null {
  const dirs = ["/usr/bin", "/usr/local/bin", ...(process.env.PATH ?? "").split(delimiter)];
  for (const d of dirs) {
    if (d !== "" && existsSync(join(d, "etcd"))) return join(d, "etcd");
  }
  return null;
}

function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return /etcd Version: (\S+)/.exec(String(r.stdout ?? ""))?.[1] ?? "unknown";
}

/** The etcd binary, or null when none is installed. */
export const etcdBin: string | null = findEtcd();
/** Its version ("3.4.23"), or null. */
export const etcdVersionFound: string | null = etcdBin === null ? null : etcdVersion(etcdBin);
/** Why tests on a real etcd 3.4 cannot run here, or null when they can. */
export const etcdMissing: string | null = etcdBin === null
  ? "etcd is not installed (apt-get install etcd-server)"
  : !etcdVersionFound!.startsWith("3.4.")
  ? `${etcdBin} is etcd ${etcdVersionFound}, not 3.4 (apt-get install etcd-server on Debian 12)`
  : null;
/**
 * Throws in CI when etcd is missing (CI installs it: a skip there would hide a regression),
 * else warns that `what` is skipped.
 */
export function requireEtcdInCi(what: string): void {
  if (etcdMissing === null) return;
  if (process.env.CI === "true") throw new Error(`${what} cannot run in CI: ${etcdMissing}`);
  console.warn(`SKIPPED ${what}: ${etcdMissing}`);
}

/** A port nobody listens on right now (the OS picks it; etcd binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => port > 0 ? resolve(port) : reject(new Error("no port")));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Base64 of a string or bytes, as etcd's JSON gateway takes keys and values. */
export const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString("base64");

/** A running etcd: its client URL, exit promise and the tail of its log. */
export interface Server {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | string>;
  log: () => string;
}

/** How {@link startEtcd} runs etcd. */
export interface EtcdOptions {
  /** --snapshot-count: applied entries between snapshots (etcd's default is 100,000). */
  snapshotCount?: number;
  /** --enable-v2: serve the v2 API too (its requests go into the WAL as v2 Requests). */
  enableV2?: boolean;
}

/** Starts etcd on `dataDir` (new or existing) with loopback client and peer ports. */
export function startEtcd(
  dataDir: string,
  clientPort: number,
  peerPort: number,
  options: EtcdOptions = {},
): Server {
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = spawn(etcdBin!, [
    "--name=raftlog-test",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${url}`,
    `--advertise-client-urls=${url}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=raftlog-test=${peer}`,
    "--initial-cluster-state=new",
    `--snapshot-count=${options.snapshotCount ?? 100_000}`,
    // big values through one request; the gRPC limit follows this one
    "--max-request-bytes=10485760",
    // keep every .snap file and WAL segment, so they can be matched against the WAL
    "--max-snapshots=0",
    "--max-wals=0",
    ...(options.enableV2 === true ? ["--enable-v2=true"] : []),
  ], {
    stdio: ["ignore", "pipe", "pipe"],
    // etcd also reads its flags from ETCD_* variables: none of the caller's may apply
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ETCD_"))),
  });
  let tail = "";
  const keep = (chunk: unknown) => {
    tail = (tail + String(chunk)).slice(-16_000);
  };
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once("exit", (code, signal) => resolve(signal ?? code ?? -1));
    proc.once("error", (e) => resolve(`spawn error: ${e.message}`));
  });
  return { proc, url, exited, log: () => tail };
}

/**
 * POSTs JSON to etcd. node:http rather than fetch: Deno's and Bun's fetch send even loopback
 * requests through HTTP_PROXY when it is set; node:http ignores it in both.
 */
export function request(
  method: string,
  url: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const payload = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method,
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
      },
      timeout: 30_000,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`${url}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`));
        } else {
          try {
            resolve(JSON.parse(text));
          } catch (e) {
            reject(e);
          }
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** POSTs JSON to etcd's v3 gateway. */
export const post = (url: string, body: unknown): Promise<Record<string, unknown>> =>
  request("POST", url, body);

/** What etcd's maintenance status reports of raft. */
export interface Status {
  raftIndex: bigint;
  raftAppliedIndex: bigint;
  raftTerm: bigint;
}

/** etcd's raft index, applied index and term. */
export async function status(s: Server): Promise<Status> {
  const j = await post(`${s.url}/v3/maintenance/status`, {});
  // the JSON gateway renders uint64 as strings
  return {
    raftIndex: BigInt(String(j.raftIndex ?? "0")),
    raftAppliedIndex: BigInt(String(j.raftAppliedIndex ?? "0")),
    raftTerm: BigInt(String(j.raftTerm ?? "0")),
  };
}

/**
 * Polls (at most ~30 s) until etcd has a leader and has set the cluster version: the last of
 * the entries it proposes itself at startup, so the first put follows them all.
 */
export async function waitReady(s: Server): Promise<void> {
  let last = "";
  for (let i = 0; i < 150; i++) {
    const exit = await Promise.race([s.exited, sleep(200).then(() => null)]);
    if (exit !== null) throw new Error(`etcd exited (${exit}) before it was ready:\n${s.log()}`);
    try {
      const st = await post(`${s.url}/v3/maintenance/status`, {});
      const v = await request("GET", `${s.url}/version`);
      if (String(st.leader ?? "0") !== "0" && /^3\.4\./.test(String(v.etcdcluster))) return;
      last = `leader ${st.leader}, cluster version ${v.etcdcluster}`;
    } catch (e) {
      last = String(e);
    }
  }
  throw new Error(`etcd not ready after 30 s (${last}):\n${s.log()}`);
}

/** Kills etcd (if it still runs) and waits for it. */
export async function killEtcd(s: Server): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
  await s.exited;
}

/**
 * Starts etcd in a fresh `<tmp>/etcd-<n>` on two free ports and waits until it is ready. The
 * ports are free when chosen but something may take them before etcd binds: then it tries
 * again with new ones (three attempts in all).
 */
export async function startReady(
  tmp: string,
  options: EtcdOptions = {},
): Promise<{ server: Server; dataDir: string }> {
  for (let attempt = 1;; attempt++) {
    const client = await freePort();
    let peer = await freePort();
    while (peer === client) peer = await freePort();
    const dataDir = join(tmp, `etcd-${attempt}`);
    const server = startEtcd(dataDir, client, peer, options);
    try {
      await waitReady(server);
      return { server, dataDir };
    } catch (e) {
      await killEtcd(server);
      if (attempt < 3 && /address already in use/.test(server.log())) continue;
      throw e;
    }
  }
}

/** SIGTERM, then wait (bounded) for the exit; SIGKILL if it hangs. */
export async function stopEtcd(s: Server): Promise<number | string> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return await s.exited;
  s.proc.kill("SIGTERM");
  // a timer of our own, cleared: a pending one would keep Node's test process alive 30 s
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), 30_000)));
  const exit = await Promise.race([s.exited, late]);
  clearTimeout(timer);
  if (exit !== null) return exit;
  s.proc.kill("SIGKILL");
  await s.exited;
  throw new Error(`etcd did not exit within 30 s of SIGTERM:\n${s.log()}`);
}
