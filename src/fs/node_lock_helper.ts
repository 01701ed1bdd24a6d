/**
 * Node has no lock API and no FFI, so one helper process per process holds its segment locks:
 * a small Perl program (Perl is part of every Debian and most Linux systems) that, on request
 * over a pipe, opens a file, checks it is the same device and inode, and takes etcd's OFD lock
 * and a flock on it (as `ofd.ts` does in-process for Deno and Bun), or releases one. The locks
 * live as long as the helper; it exits when its stdin closes, so they go with this process.
 * Where Perl is not installed, locks hold within this process only; when the helper cannot be
 * started, a lock is an error, never reported as taken.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/**
 * The helper. Requests: `L <id> <dev> <ino> <w|r> <ofd|noofd> <path>`, `U <id>`. Replies, one
 * line each: `K <id> <kind>` (locked, or unlocked), `B <id>` (busy), `E <id> <why>`.
 */
const SCRIPT = String.raw`
use strict; use warnings; use Fcntl qw(:flock O_RDWR O_RDONLY); use Errno;
$| = 1;
my %held;
my $wrlck = pack("s s x4 q q i x4", 1, 0, 0, 0, 0);
my $unlck = pack("s s x4 q q i x4", 2, 0, 0, 0, 0);
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, $id, $dev, $ino, $mode, $ofd, $path) = split / /, $line, 7;
  if ($op eq "U") { close(delete $held{$id}) if exists $held{$id}; print "K $id\n"; next; }
  my $fh;
  if (!sysopen($fh, $path, $mode eq "w" ? O_RDWR : O_RDONLY)) { print "E $id open: $!\n"; next; }
  my @st = stat($fh);
  if ("$st[0]" ne $dev || "$st[1]" ne $ino) { close $fh; print "E $id the path names another file now\n"; next; }
  my $kind = "ofd";
  if ($ofd ne "ofd" || !fcntl($fh, 37, $wrlck)) {
    if ($ofd eq "ofd" && ($!{EAGAIN} || $!{EACCES})) { close $fh; print "B $id\n"; next; }
    if ($ofd eq "ofd" && !($!{EINVAL} || $!{EBADF})) { my $e = "$!"; close $fh; print "E $id fcntl: $e\n"; next; }
    $kind = "flock";
  }
  if (!flock($fh, LOCK_EX | LOCK_NB)) {
    my $busy = $!{EWOULDBLOCK}; my $e = "$!";
    fcntl($fh, 37, $unlck) if $kind eq "ofd";
    close $fh;
    print $busy ? "B $id\n" : "E $id flock: $e\n";
    next;
  }
  $held{$id} = $fh;
  print "K $id $kind\n";
}
`;

interface Pending {
  resolve: (reply: string) => void;
  reject: (e: Error) => void;
}

/** The one helper of this process, started on the first lock. */
class LockHelper {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffered = "";
  /** Set once Perl was found missing: locks are this process's only from then on. */
  missing = false;

  /** Sends a request; resolves with its reply line (without the code's id). */
  private request(id: number, line: string): Promise<string> {
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.refs();
      child.stdin!.write(line + "\n");
    });
  }

  /** Keeps the process alive only while a request waits for its reply. */
  private refs(): void {
    const streams = [this.child?.stdin, this.child?.stdout] as unknown as ({
      ref?: () => void;
      unref?: () => void;
    } | null)[];
    const busy = this.pending.size > 0;
    for (const s of streams) busy ? s?.ref?.() : s?.unref?.();
    // the child's own handle too: its exit must be seen while a request waits on it
    if (busy) this.child?.ref();
    else this.child?.unref();
  }

  private start(): ChildProcess {
    if (this.child !== null) return this.child;
    const child = spawn("perl", ["-e", SCRIPT], { stdio: ["pipe", "pipe", "inherit"] });
    this.child = child;
    child.unref();
    const fail = (e: Error) => {
      if (this.child === child) this.child = null;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    child.once("error", (e) => {
      if ((e as { code?: string }).code === "ENOENT") this.missing = true;
      fail(e);
    });
    child.once("exit", (code, signal) => {
      fail(new Error(`the lock helper (perl) exited with ${signal ?? code}`));
    });
    child.stdin!.on("error", () => {}); // a dead helper surfaces through "exit"
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.buffered += chunk;
      let nl;
      while ((nl = this.buffered.indexOf("\n")) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const [code, id] = line.split(" ", 2);
        const p = this.pending.get(Number(id));
        if (p === undefined) continue;
        this.pending.delete(Number(id));
        if (code === "E") p.reject(new Error(line.slice(code.length + id.length + 2)));
        else p.resolve(code);
      }
      this.refs();
    });
    return child;
  }

  /**
   * Locks `path` (the file `dev`/`ino`, opened for writing when `write`) in the helper.
   * Resolves with its lock id, null when busy, or "unavailable" when Perl is missing; rejects
   * when the helper cannot run or the lock failed otherwise.
   */
  async lock(
    path: string,
    dev: bigint,
    ino: bigint,
    write: boolean,
  ): Promise<number | null | "unavailable"> {
    if (this.missing) return "unavailable";
    if (path.includes("\n")) throw new Error(`cannot lock ${path}: a newline in the path`);
    const id = this.nextId++;
    const ofd = process.platform === "linux" ? "ofd" : "noofd";
    try {
      const reply = await this.request(
        id,
        `L ${id} ${dev} ${ino} ${write ? "w" : "r"} ${ofd} ${path}`,
      );
      return reply === "K" ? id : null;
    } catch (e) {
      if (this.missing) return "unavailable";
      throw new Error(`cannot lock ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Releases lock `id`; resolves once the helper has closed its descriptor. */
  async unlock(id: number): Promise<void> {
    if (this.child === null) return; // gone: so are its locks
    await this.request(id, `U ${id}`).catch(() => {});
  }
}

/** The helper shared by every Node file of this process. */
export const lockHelper: LockHelper = new LockHelper();
