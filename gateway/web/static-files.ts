/**
 * Sends a file from a directory with express's `res.sendFile` (the `send` module: content type,
 * ETag, Last-Modified, 304 on If-None-Match / If-Modified-Since, HEAD, ranges), after making path
 * traversal impossible rather than merely unlikely:
 *
 * - every path segment must be a plain name (letters, digits, `._-`, not starting with a dot), so
 *   `..`, dotfiles, percent-encoded slashes and NUL bytes never reach the file system;
 * - the file's real path (symlinks resolved) must still lie inside the directory's real path;
 * - only regular files are sent: a directory is "not found", never listed.
 *
 * Anything else is the caller's 404.
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Response } from 'express';

const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_SEGMENTS = 8;

/** Whether `segments` may name a file under a served directory. */
export function isSafeRelativePath(segments: readonly string[]): boolean {
  return segments.length > 0 && segments.length <= MAX_SEGMENTS && segments.every((s) => SAFE_SEGMENT.test(s));
}

/**
 * Sends `root/segments…` with `headers`; resolves false (nothing sent) when there is no such file
 * to send, true once the response is handled.
 */
export async function sendStaticFile(res: Response, root: string, segments: readonly string[], headers: Record<string, string>): Promise<boolean> {
  if (!isSafeRelativePath(segments)) return false;
  let file: string;
  try {
    const [realRoot, realFile] = await Promise.all([realpath(root), realpath(join(root, ...segments))]);
    if (!realFile.startsWith(realRoot + sep) || !(await stat(realFile)).isFile()) return false;
    file = realFile.slice(realRoot.length + 1);
    root = realRoot;
  } catch {
    return false; // no such file (or directory missing)
  }
  return new Promise((resolve, reject) => {
    res.sendFile(file, { root, headers, dotfiles: 'deny', etag: true, lastModified: true, cacheControl: false, acceptRanges: true }, (err?: Error & { code?: string; status?: number }) => {
      if (err === undefined || res.headersSent) resolve(true);
      else if (err.status === 404 || err.code === 'ENOENT' || err.code === 'EISDIR') resolve(false);
      else reject(err);
    });
  });
}
