/**
 * Minimal `/`-separated path helpers, so the core needs no runtime path module.
 *
 * @module
 */

/** Joins a directory and a file name. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** Removes trailing separators (but keeps a lone `/`). */
export function cleanPath(p: string): string {
  let end = p.length;
  while (end > 1 && p[end - 1] === "/") end--;
  return p.slice(0, end);
}

/** The parent directory of a path. */
export function parentDir(p: string): string {
  const c = cleanPath(p);
  const i = c.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return c.slice(0, i);
}
