// The HTTP proxy's bench fixtures, loaded by server-child.mjs: the upstream API the proxy forwards to
// (its own process, `server-child.mjs upstream`), and the vault-side set-up of a credential at it.

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

// About the size of a small API answer (an issue, a message): the proxy's cost is per request, not per byte.
const itemBody = JSON.stringify({
  id: 4242,
  title: 'A bench item',
  state: 'open',
  labels: ['bench', 'proxy'],
  body: 'x'.repeat(256),
  created_at: '2026-01-01T00:00:00.000Z',
});

/**
 * A bare node:http upstream: `POST|PUT …/upload` reads the body and answers its length,
 * `GET …/download?bytes=N` streams N bytes, anything else answers `itemBody`.
 */
export const startUpstream = async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname.endsWith('/download')) {
      const total = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    let bytes = 0;
    req.on('data', (data) => (bytes += data.length));
    req.on('end', () => {
      const body = url.pathname.endsWith('/upload') ? JSON.stringify({ bytes }) : itemBody;
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
};

/**
 * Through the admin REST API, as an operator would: an api_key credential whose base URL is the
 * upstream (listed in its allowed hosts, so the outbound guard lets the loopback address through), an
 * agent, and a proxy-only grant. One proxied call is checked.
 */
export const setupProxy = async ({ vault, token }, { upstreamUrl, service, agentName }) => {
  const admin = async (method, url, payload, expected) => {
    const response = await vault.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      payload,
    });
    if (response.statusCode !== expected) {
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 300)}`);
    }
    return response.json();
  };
  const host = new URL(upstreamUrl).host;
  await admin(
    'POST',
    '/v1/admin/credentials',
    {
      name: service,
      type: 'api_key',
      secret: { api_key: 'sk-bench-proxy-0b6c1f5e3d0a4b8e' },
      base_url: `${upstreamUrl}/api`,
      allowed_hosts: [host],
    },
    201,
  );
  const agent = await admin('POST', '/v1/admin/agents', { name: agentName }, 201);
  await admin('POST', '/v1/admin/grants', { agent: agent.id, credential: service, until_revoked: true }, 201);
  const check = await vault.app.inject({
    method: 'GET',
    url: `/v1/proxy/${service}/items/1`,
    headers: { authorization: `Bearer ${agent.api_key}` },
  });
  if (check.statusCode !== 200 || !check.body.includes('A bench item')) {
    throw new Error(`a test proxied call answered ${check.statusCode}: ${check.body.slice(0, 300)}`);
  }
  return { apiKey: agent.api_key, service };
};

/** This process's peak resident memory (`VmHWM`, bytes), Linux only. */
export const peakRss = () => {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
};

/** Resets the peak to the current resident memory (Linux `clear_refs` 5); false where it cannot. */
export const resetPeakRss = () => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
};
