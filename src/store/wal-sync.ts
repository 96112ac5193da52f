import { type FileHandle, open } from 'node:fs/promises';

/**
 * Makes what SQLite has committed durable without blocking the event loop.
 *
 * With `synchronous = FULL` SQLite fsyncs the WAL inside every COMMIT, on the calling thread, which in
 * Node is the event loop: every other request waits for the disk. With `synchronous = NORMAL` a commit
 * only appends to the WAL, and this fsyncs that file on libuv's thread pool before the caller
 * acknowledges anything. Callers that arrive while an fsync runs share the next one (group commit).
 * An acknowledged commit is then exactly as durable as under FULL, and since WAL recovery keeps a
 * prefix of the commits, nothing unacknowledged can leave a gap behind an acknowledged one.
 */
export const createWalSync = (walPath: string) => {
  let handle: Promise<FileHandle> | undefined;
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let syncs = 0;

  const syncOnce = async () => {
    handle ??= open(walPath, 'r');
    let file: FileHandle;
    try {
      file = await handle;
    } catch (error) {
      handle = undefined;
      // No WAL yet: nothing has been committed through it, so nothing waits to be made durable.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await file.sync();
    syncs += 1;
  };

  return {
    /** Resolves once every commit made before the call is on disk. */
    durable(): Promise<void> {
      if (!running) {
        running = syncOnce().finally(() => {
          running = undefined;
        });
        return running;
      }
      // An fsync is under way but may have started before this caller's commit: wait for the next one.
      queued ??= running
        .catch(() => {})
        .then(() => {
          queued = undefined;
          return this.durable();
        });
      return queued;
    },
    /** How many fsyncs ran (for tests and metrics). */
    count: () => syncs,
    async close() {
      await running?.catch(() => {});
      await queued?.catch(() => {});
      const file = await handle?.catch(() => undefined);
      handle = undefined;
      await file?.close();
    },
  };
};
