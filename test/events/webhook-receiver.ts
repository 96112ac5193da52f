import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedEvent {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** Whether `Webhook.verify` of the Standard Webhooks library accepted it. */
  verified: boolean;
  /** The status the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedEvent[];
  /** Resolves once `count` requests have arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A test secret in the Standard Webhooks form. */
export const testWebhookSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

/**
 * A local HTTP receiver of the vault's events that checks each signature with the library's own
 * `Webhook.verify`. `answer(n)` decides the n-th request's (0-based) status and headers.
 */
export const startWebhookReceiver = async (
  options: {
    secret?: string;
    answer?: (index: number) => { status: number; headers?: Record<string, string> };
    delayMs?: number;
  } = {},
): Promise<WebhookReceiver> => {
  const webhook = new Webhook(options.secret ?? testWebhookSecret);
  const received: ReceivedEvent[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = true;
      try {
        webhook.verify(body, request.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      const { status, headers = {} } = options.answer?.(received.length) ?? { status: 204 };
      received.push({ headers: request.headers, body, at: Date.now(), verified, status });
      for (const wake of waiters.splice(0)) wake();
      setTimeout(() => {
        response.writeHead(status, headers).end(status >= 400 ? '{"error":"not now"}' : '');
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/tokenvault`,
    received,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`received ${received.length} of ${count} requests in time`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, Math.min(left, 100));
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
