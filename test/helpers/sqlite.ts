import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDataDir {
  /** An empty directory under the OS temp dir, usable as `--data-dir`. */
  readonly dir: string;
  /** Removes the directory and everything in it. Safe to call twice. */
  cleanup(): Promise<void>;
}

export const createTempDataDir = async (): Promise<TempDataDir> => {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-test-'));
  return {
    dir,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
};
