import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/** Sends bytes as they are and reads everything the server answers until it closes. */
const raw = (port: number, request: string): Promise<string> =>
  new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });

const parse = (answer: string) => {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return {
    status: Number(head.split(' ')[1]),
    head,
    body: JSON.parse(body) as { error: Record<string, string> },
  };
};

/**
 * Issue 10 finding 8: node's HTTP parser refuses a control byte in a header before Fastify sees the
 * request; the answer must still be the standard error body with a stable code.
 */
describe('requests node refuses to parse', () => {
  let t: TestVault;
  let port: number;
  beforeAll(async () => {
    t = await startTestVault();
    port = Number(new URL(await t.vault.listen()).port);
  });
  afterAll(() => t.stop());

  it.each([
    ['a control byte in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n'],
    ['DEL in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x7fb\r\n\r\n'],
    ['a control byte in a header name', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX\x01Note: ab\r\n\r\n'],
    ['a bare LF inside a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\rb\r\n\r\n'],
    ['a control byte in the path', 'GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n'],
  ])('answers %s with 400 malformed_http in the standard body', async (_what, request) => {
    const answer = parse(await raw(port, request));
    expect(answer.status, answer.head).toBe(400);
    expect(answer.head).toMatch(/content-type: application\/json/i);
    expect(answer.body.error).toMatchObject({
      code: 'malformed_http',
      request_id: expect.stringMatching(/^req_/),
    });
    expect(answer.body.error?.message).toMatch(/not well-formed HTTP/);
  });

  it('answers headers beyond the size limit with 431 headers_too_large', async () => {
    const answer = parse(
      await raw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`),
    );
    expect(answer.status).toBe(431);
    expect(answer.body.error?.code).toBe('headers_too_large');
  });

  it('still serves a well-formed request', async () => {
    const answer = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });
});
