import type { LookupAddress, lookup as dnsLookup } from 'node:dns';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundGuard, outboundRefusal, parseOutboundAllow } from './outbound-guard.js';

describe('TOKENVAULT_OUTBOUND_ALLOW', () => {
  it('takes host names, addresses and CIDRs, and refuses anything else', () => {
    expect(parseOutboundAllow(' Issuer.Internal, 127.0.0.1 ,10.20.0.0/16,[::1],fd00::/8,')).toEqual({
      hosts: ['issuer.internal'],
      cidrs: ['127.0.0.1/32', '10.20.0.0/16', '::1/128', 'fd00::/8'],
    });
    expect(parseOutboundAllow('')).toEqual({ hosts: [], cidrs: [] });
    for (const bad of ['10.0.0.0/33', 'http://x', 'a b', '::1/129', '1.2.3.4/8/9'])
      expect(() => parseOutboundAllow(bad), bad).toThrow();
  });
});

describe('guarded fetch', () => {
  let server: Server;
  let base: string;
  let port: number;
  const seen: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push(request);
      const target = new URL(request.url ?? '/', 'http://x').searchParams.get('to');
      if (target) return response.writeHead(302, { location: target }).end();
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${request.method}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const refusedWith = async (promise: Promise<unknown>, message: RegExp) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(outboundRefusal(error)?.message).toMatch(message);
  };

  it('refuses a loopback address, by literal or by name, when the allowlist does not name it', async () => {
    const before = seen.length;
    const guard = createOutboundGuard();
    await refusedWith(guard.fetch(`${base}/`), /127\.0\.0\.1 is a loopback address/);
    await refusedWith(guard.fetch(`http://localhost:${port}/`), /localhost \(.*\) is a loopback address/);
    await refusedWith(
      guard.fetch('http://169.254.169.254/latest/meta-data/'),
      /link-local \(cloud metadata\)/,
    );
    await refusedWith(guard.fetch('http://[::ffff:127.0.0.1]/'), /IPv4-mapped/);
    await refusedWith(guard.fetch('file:///etc/passwd'), /file: URLs/);
    expect(seen.length).toBe(before);
  });

  it('connects when the allowlist names the address or the host', async () => {
    const byAddress = createOutboundGuard({ allow: parseOutboundAllow('127.0.0.0/8') });
    const answer = await byAddress.fetch(`${base}/`, { method: 'POST', body: 'x' });
    expect([answer.status, await answer.text()]).toEqual([200, 'hello POST']);
    const byHost = createOutboundGuard({ allow: parseOutboundAllow('localhost') });
    expect((await byHost.fetch(`http://localhost:${port}/`)).status).toBe(200);
  });

  it('checks every address a name resolves to, with the lookup the connection uses', async () => {
    // A name that answers a public address and a private one: the connection could use either.
    const rebinding: typeof dnsLookup = ((
      _host: string,
      _options: unknown,
      callback: (e: null, a: LookupAddress[]) => void,
    ) =>
      callback(null, [
        { address: '93.184.215.14', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ])) as unknown as typeof dnsLookup;
    const guard = createOutboundGuard({ lookup: rebinding });
    await refusedWith(
      guard.fetch('http://rebind.example/'),
      /rebind\.example \(10\.0\.0\.7\) is a private address/,
    );
  });

  it('returns a redirect as it is unless told to follow, and re-checks every hop it follows', async () => {
    const guard = createOutboundGuard({ allow: parseOutboundAllow('127.0.0.1') });
    const toMetadata = `${base}/?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`;
    expect((await guard.fetch(toMetadata)).status).toBe(302);
    await refusedWith(guard.fetch(toMetadata, {}, { redirects: 3 }), /169\.254\.169\.254 is a link-local/);
    const toIpv6Loopback = `${base}/?to=${encodeURIComponent(`http://[::1]:${port}/`)}`;
    await refusedWith(guard.fetch(toIpv6Loopback, {}, { redirects: 3 }), /::1 is a loopback address/);
    const followed = await guard.fetch(
      `${base}/?to=${encodeURIComponent(`${base}/done`)}`,
      {},
      { redirects: 1 },
    );
    expect(await followed.text()).toBe('hello GET');
  });

  it('does not send credentials on to another origin', async () => {
    const guard = createOutboundGuard({ allow: parseOutboundAllow('127.0.0.1,localhost') });
    const before = seen.length;
    const answer = await guard.fetch(
      `${base}/?to=${encodeURIComponent(`http://localhost:${port}/next`)}`,
      { headers: { authorization: 'Bearer upstream-secret' } },
      { redirects: 1 },
    );
    expect(answer.status).toBe(200);
    const [first, second] = seen.slice(before);
    expect(first?.headers.authorization).toBe('Bearer upstream-secret');
    expect(second?.headers.authorization).toBeUndefined();
  });
});
