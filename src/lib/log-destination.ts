import { type DestinationStream, pino } from 'pino';
import { type LogFormat, renderTextLine } from '../http/logger-options.js';

/** How long shutting down waits for buffered log lines to be written. */
const flushTimeoutMs = 2000;

/**
 * Standard output for the log (JSON lines, or text lines on a terminal), written asynchronously, with a shutdown that cannot hang.
 *
 * pino's own stdout destination flushes synchronously when the process exits, retrying for as long as
 * the pipe is full: when the log reader has stopped reading (a stuck log shipper), `SIGTERM` then
 * never ends the process. Here `settle()` gives the buffered lines a bounded time to go out, then
 * closes the destination, dropping what is left, so nothing is left for the exit hook to wait for.
 */
export const createStdoutLog = (format: LogFormat = 'json') => {
  const stdout = pino.destination({ dest: 1, sync: false });
  let dropped = false;
  const drop = () => {
    if (dropped) return;
    dropped = true;
    stdout.destroy();
  };
  /** `text`: each line pino writes (one whole JSON line a call) rendered for a terminal. */
  const destination: DestinationStream =
    format === 'text' ? { write: (line: string) => stdout.write(renderTextLine(line)) } : stdout;
  return {
    destination,
    /**
     * Writes what is buffered, for at most a couple of seconds, then closes the destination (dropping
     * what could not be written): a write still waiting on a full pipe would keep the process alive.
     * Call it last: nothing is logged afterwards.
     */
    settle: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          drop();
          resolve();
        };
        const timer = setTimeout(done, flushTimeoutMs);
        stdout.flush(done);
      }),
    /** Drops what is buffered at once (a forced exit). */
    drop,
  };
};
