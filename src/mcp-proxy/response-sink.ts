import type { JSONRPCMessage } from '@modelcontextprotocol/server';

/** The HTTP answer of one request: JSON, or an SSE stream once a notification has to go first. */
export interface Sink {
  response: Promise<Response>;
  notify(message: JSONRPCMessage): void;
  end(message: JSONRPCMessage): void;
  /** The client went away: nothing more is written. */
  drop(): void;
}

export const openSink = (): Sink => {
  let resolve!: (response: Response) => void;
  const response = new Promise<Response>((r) => (resolve = r));
  let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  let done = false;
  const encoder = new TextEncoder();
  const event = (message: JSONRPCMessage) =>
    encoder.encode(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  return {
    response,
    notify(message) {
      if (done) return;
      if (!stream) {
        const body = new ReadableStream<Uint8Array>({ start: (controller) => void (stream = controller) });
        resolve(
          new Response(body, {
            headers: {
              'content-type': 'text/event-stream',
              'cache-control': 'no-cache',
              'x-accel-buffering': 'no',
            },
          }),
        );
      }
      stream?.enqueue(event(message));
    },
    end(message) {
      if (done) return;
      done = true;
      if (!stream) return resolve(Response.json(message));
      stream.enqueue(event(message));
      stream.close();
    },
    drop() {
      if (done) return;
      done = true;
      try {
        stream?.close();
      } catch {
        // Already cancelled by the consumer.
      }
      resolve(new Response(null, { status: 499 }));
    },
  };
};
