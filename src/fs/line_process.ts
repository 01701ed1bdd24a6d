/**
 * A child process spoken to a line at a time, for `wal dump-logs -stream-decoder`: one line
 * in on its standard input, one line back from its standard output. Built on
 * `node:child_process`, which Deno, Bun and Node all provide; the CLI's core reaches it only
 * through {@link LineProcess}.
 *
 * @module
 */

import { spawn } from "node:child_process";

/** What a finished child process left: how it ended and everything it wrote to stderr. */
export interface LineProcessExit {
  /** Its exit code; null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, if one did. */
  signal: string | null;
  /** Everything it wrote to standard error. */
  stderr: Uint8Array;
}

/** One line of a child's output, or what it wrote before its output ended. */
export interface LineReply {
  /** The line with its "\n", or the bytes before the end of output (maybe none). */
  line: Uint8Array;
  /** True when the output ended before a "\n". */
  eof: boolean;
}

/** A child process that answers each line written to it with a line. */
export interface LineProcess {
  /** Writes `line` and a "\n" to its standard input; resolves with its next output line. */
  exchange(line: string): Promise<LineReply>;
  /** Closes its standard input and waits for it to exit. */
  finish(): Promise<LineProcessExit>;
  /** Ends it at once (SIGKILL) unless it has exited, when the caller gives up on it. */
  kill(): void;
}

const NL = 0x0a;

/**
 * Starts `command` with `args` (a bare name is looked up on PATH, as Go's exec.Command
 * does). A command that cannot start rejects the first {@link LineProcess.exchange} or
 * {@link LineProcess.finish} with the spawn error.
 */
export function spawnLineProcess(command: string, args: readonly string[]): LineProcess {
  const child = spawn(command, [...args], { stdio: ["pipe", "pipe", "pipe"] });
  // Output not yet handed out: chunks, the first from `head` on. Each chunk is searched for
  // a newline once, so a long line costs its length, not its length squared.
  let chunks: Uint8Array[] = [];
  let head = 0;
  let ended = false;
  let failure: Error | null = null;
  let waiter: (() => void) | null = null;
  const stderr: Uint8Array[] = [];
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  const exited = new Promise<LineProcessExit>((resolve, reject) => {
    child.on("error", (e) => {
      failure = e;
      ended = true;
      wake();
      reject(e);
    });
    child.on("close", (code, signal) => {
      resolve({ code, signal, stderr: concat(stderr) });
    });
  });
  exited.catch(() => {}); // the error also reaches exchange() or finish()
  child.stdout.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    wake();
  });
  child.stdout.on("end", () => {
    ended = true;
    wake();
  });
  child.stderr.on("data", (chunk: Uint8Array) => stderr.push(chunk));
  // A decoder that exits without reading its input makes our writes fail with EPIPE: its
  // output (or its absence) is what is reported, not the write.
  child.stdin.on("error", () => {});

  /** Removes and returns the pending bytes before offset `end` of chunk `k`. */
  const take = (k: number, end: number): Uint8Array => {
    const parts = chunks.slice(0, k);
    if (k > 0) parts[0] = parts[0].subarray(head);
    parts.push(chunks[k].subarray(k === 0 ? head : 0, end));
    chunks = chunks.slice(k);
    head = end;
    if (head === chunks[0].length) {
      chunks.shift();
      head = 0;
    }
    return parts.length === 1 ? parts[0].slice() : concat(parts);
  };

  return {
    async exchange(line: string): Promise<LineReply> {
      if (failure !== null) throw failure;
      child.stdin.write(line + "\n");
      let searched = 0; // chunks already searched without a newline
      for (;;) {
        for (; searched < chunks.length; searched++) {
          const from = searched === 0 ? head : 0;
          const nl = chunks[searched].indexOf(NL, from);
          if (nl >= 0) return { line: take(searched, nl + 1), eof: false };
        }
        if (failure !== null) throw failure;
        if (ended) {
          const k = chunks.length - 1;
          return { line: k < 0 ? new Uint8Array(0) : take(k, chunks[k].length), eof: true };
        }
        await new Promise<void>((resolve) => (waiter = resolve));
      }
    },
    finish(): Promise<LineProcessExit> {
      child.stdin.end();
      return exited;
    },
    kill(): void {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
