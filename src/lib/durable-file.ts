import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writing a small secret file so that it survives a crash or a power loss the moment the call returns:
 * the bytes go to a temporary file in the same directory, which is fsynced, then moved into place, and
 * the directory is fsynced so that the new name is on disk too. A reader never sees a half-written
 * file: before the move there is no file (or the old one), after it the whole new one.
 */

/** Makes a directory's entries (a file just created, renamed or removed) durable. No-op on Windows. */
export const fsyncDirectory = (dir: string): void => {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

const writeTemp = (path: string, content: string, mode: number): string => {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  return temp;
};

/** Writes `content` to `path` (replacing a file already there), durably and atomically. */
export const writeFileDurably = (path: string, content: string, { mode }: { mode: number }): void => {
  const temp = writeTemp(path, content, mode);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(dirname(path));
};

/**
 * Creates `path` with `content`, durably and atomically, and never over an existing file: throws
 * `EEXIST` when one is there (a hard link, unlike a rename, refuses to replace its target).
 */
export const createFileDurably = (path: string, content: string, { mode }: { mode: number }): void => {
  const temp = writeTemp(path, content, mode);
  try {
    linkSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDirectory(dirname(path));
};

/**
 * Creates `dir` (and any missing parent) with mode 0700 when it is missing, and makes its creation
 * durable, so that a file written into it next survives a crash together with its directory.
 */
export const ensurePrivateDirectory = (dir: string): void => {
  const firstCreated = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (firstCreated !== undefined) fsyncDirectory(dirname(firstCreated));
};
