/** A part of the running vault that holds something: a connection, a timer, a socket, a log buffer. */
export interface Component {
  name: string;
  /** Called when the component joins; one that is ready once built (a store, a writer) has none. */
  start?: () => void | Promise<void>;
  /** Releases what it holds. Called once, after every component that joined later has stopped. */
  stop: () => void | Promise<void>;
}

export interface RunningComponents<T> {
  value: T;
  /** Stops every component in reverse order of starting; the same promise on every call. */
  stop(): Promise<void>;
}

/**
 * Builds something made of components, starting each as `build` reaches it. Stopping runs in reverse,
 * so a component stops before anything it was built on (the HTTP app before the audit writer its
 * requests append to, the writer before the store it commits to, the store before the log). When
 * `build` throws, what has started is stopped and the error goes on: a failed start leaks nothing.
 * A component whose stop fails is reported and the others still stop; `stop()` then rejects with the
 * first such error.
 */
export const startComponents = async <T>(
  onStopError: (name: string, error: unknown) => void,
  build: (start: (component: Component) => Promise<void>) => Promise<T>,
): Promise<RunningComponents<T>> => {
  const started: Component[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const failures: unknown[] = [];
      for (const component of [...started].reverse()) {
        try {
          await component.stop();
        } catch (error) {
          onStopError(component.name, error);
          failures.push(error);
        }
      }
      if (failures.length > 0) throw failures[0];
    })());

  const start = async (component: Component) => {
    if (stopping) throw new Error(`cannot start ${component.name}: stopping has begun`);
    await component.start?.();
    started.push(component);
  };

  try {
    return { value: await build(start), stop };
  } catch (error) {
    // The build's error is the one to report; stop failures have gone to onStopError.
    await stop().catch(() => undefined);
    throw error;
  }
};
