import type { Logger } from 'pino';

/**
 * Runs `tick` every `everyMs`, one run at a time, until stopped; a failed run is logged and the next
 * one tries again. Safe on several replicas when `tick` is (expiring approvals is a conditional
 * update per approval, so each is expired and recorded once).
 */
export const createIntervalWorker = (
  tick: () => Promise<unknown>,
  everyMs: number,
  logger: Pick<Logger, 'warn'>,
) => {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  return {
    start(): void {
      timer = setInterval(() => {
        running = running.then(tick).catch((error: unknown) => {
          logger.warn({ err: error }, 'approval expiry run failed');
        });
      }, everyMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
};
