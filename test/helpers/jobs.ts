import { setTimeout as sleep } from 'node:timers/promises';

/** A key job as both the HTTP view (`finished_at`) and the service (`finishedAt`) show it. */
interface JobStatus {
  readonly job?: { readonly finished_at?: string | null; readonly finishedAt?: string | null } | null;
}

/**
 * Polls a key job's status until the job has finished and returns that status; throws with the last
 * status it saw when the job has not finished within `timeoutMs`, so a stuck job fails the test
 * instead of letting it go on to assert against a half-done re-wrap.
 */
export const waitForJob = async <Status extends JobStatus>(
  getStatus: () => Promise<Status>,
  { timeoutMs = 15_000, intervalMs = 25 } = {},
): Promise<Status> => {
  const deadline = Date.now() + timeoutMs;
  let last: Status | undefined;
  while (Date.now() < deadline) {
    last = await getStatus();
    if (last.job?.finished_at || last.job?.finishedAt) return last;
    await sleep(intervalMs);
  }
  throw new Error(`the key job did not finish within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`);
};
