/**
 * Segment locks the way etcd takes them on Linux (`pkg/fileutil/lock_linux.go`): an
 * open-file-description lock, `fcntl(F_OFD_SETLK)` with a write lock on the whole file. OFD
 * locks and `flock` do not conflict with each other on Linux, so a flock alone never
 * excludes etcd; this module takes both, so a process of this library that can only flock
 * (Deno without `--allow-ffi`) is still excluded too. Used by the Deno and Bun adapters over
 * libc through FFI; it holds no runtime globals itself.
 *
 * @module
 */

/** The libc calls a lock needs, bound by the adapter's FFI. */
export interface LockCalls {
  /** fcntl(fd, cmd, struct flock *). */
  fcntl(fd: number, cmd: number, arg: Uint8Array): number;
  /** flock(fd, operation). */
  flock(fd: number, op: number): number;
  /** The calling thread's errno, read right after a failed call. */
  errno(): number;
}

/** Linux's fcntl commands for OFD locks (the same on x86_64 and aarch64). */
const F_OFD_SETLK = 37;
const F_WRLCK = 1;
const F_UNLCK = 2;
const LOCK_EX = 2;
const LOCK_NB = 4;

const EAGAIN = 11; // also EWOULDBLOCK
const EACCES = 13;
const EBADF = 9;
const EINVAL = 22;

/** A `struct flock` over the whole file (l_whence SEEK_SET, l_start 0, l_len 0, l_pid 0). */
function flockStruct(type: number): Uint8Array {
  // 32 bytes: l_type i16 @0, l_whence i16 @2, l_start i64 @8, l_len i64 @16, l_pid i32 @24
  const b = new Uint8Array(32);
  new DataView(b.buffer).setInt16(0, type, true);
  return b;
}

const wrlck = flockStruct(F_WRLCK);
const unlck = flockStruct(F_UNLCK);

/**
 * Takes an exclusive, non-blocking lock on `fd`: an OFD write lock (etcd's), then a flock
 * (this library's fallbacks'). Returns false when another open file holds either (and leaves
 * neither taken). Falls back to flock alone, as etcd does, where the kernel has no OFD locks
 * (EINVAL), and where a write lock is not allowed (EBADF: a directory, or a file opened
 * read-only). Any other failure throws an Error naming the errno: a lock that could not be
 * taken is never reported as taken.
 */
export function lockFd(calls: LockCalls, fd: number): boolean {
  let ofd = true;
  if (calls.fcntl(fd, F_OFD_SETLK, wrlck) !== 0) {
    const e = calls.errno();
    if (e === EAGAIN || e === EACCES) return false;
    if (e !== EINVAL && e !== EBADF) throw new Error(`fcntl(F_OFD_SETLK) failed: errno ${e}`);
    ofd = false;
  }
  if (calls.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const e = calls.errno();
    if (ofd) calls.fcntl(fd, F_OFD_SETLK, unlck);
    if (e === EAGAIN) return false;
    throw new Error(`flock(LOCK_EX|LOCK_NB) failed: errno ${e}`);
  }
  return true;
}
