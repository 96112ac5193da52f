// @ts-check
// Section `proxy`: an agent's call through the HTTP proxy (`/v1/proxy/{service}/…`: API key, a
// proxy-only grant, the credential injected, one durable `credential.proxy` event per call) against
// the same call straight to the upstream, in the same run: requests per second and p50/p99 at full
// speed, the median added one call at a time, and a large body streamed each way with the vault's
// peak memory watched. The upstream is a bare node:http server in a process of its own
// (proxy-upstream.mjs); the vault runs its default configuration on SQLite.

import { request as httpRequest } from 'node:http';
import { startServer } from '../children.mjs';
import { runLoad } from '../load.mjs';
import { median } from '../measure.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

const service = 'bench-api';

/** @param {number | undefined} value @param {number} [digits] */
const fmt = (value, digits = 2) =>
  value === undefined || Number.isNaN(value) ? '–' : Number(value).toFixed(digits);

/**
 * Streams `bytes` bytes as a request body (with its length) and reads the answer whole; or, for a
 * download, counts the body without keeping it. Resolves with the status, the bytes received and the
 * seconds taken.
 * @param {{ url: string, method: string, headers: Record<string, string>, upload?: number }} options
 */
const stream = ({ url, method, headers, upload }) =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    const req = httpRequest(
      url,
      { method, headers: upload ? { ...headers, 'content-length': String(upload) } : headers },
      (res) => {
        let received = 0;
        res.on('data', (data) => (received += data.length));
        res.on('end', () =>
          resolve({ status: res.statusCode, received, seconds: (performance.now() - started) / 1000 }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (!upload) return void req.end();
    let sent = 0;
    const pump = () => {
      while (sent < upload) {
        const n = Math.min(chunk.length, upload - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });

const benchProxy = async () => {
  const upstream = await startServer('upstream');
  const dataDir = tempDir();
  const vault = await startServer('vault', { BENCH_DATA_DIR: dataDir });
  try {
    /** @type {{ apiKey: string }} */
    const access = await vault.call('setupProxy', {
      upstreamUrl: upstream.url,
      service,
      agentName: 'bench-proxy-agent',
    });
    const path = '/items/4242?fields=title,state';
    const direct = { label: 'direct', url: `${upstream.url}/api${path}`, headers: {} };
    const proxied = {
      label: 'proxy',
      url: `${vault.url}/v1/proxy/${service}${path}`,
      headers: { authorization: `Bearer ${access.apiKey}` },
    };
    /** @param {typeof direct} target @param {number} connections @param {number} duration */
    const load = async (target, connections, duration) => {
      let sent = 0;
      const before = target === proxied ? await vault.call('auditHead') : 0;
      const result = await runLoad({
        url: target.url,
        connections,
        duration,
        setupRequest: (req) => {
          sent += 1;
          return { ...req, headers: { ...req.headers, ...target.headers } };
        },
      });
      const audit =
        target === proxied
          ? await vault.call('auditCount', { afterSeq: before, action: 'credential.proxy' })
          : undefined;
      return { ...result, sent, audit };
    };
    if (settings.warmup > 0) {
      for (const target of [direct, proxied]) {
        log(`warm-up: ${target.label} (${settings.warmup} s)`);
        await load(target, settings.connections, settings.warmup);
      }
    }
    /** @type {Record<string, any[]>} */
    const runs = { 'direct|full': [], 'proxy|full': [], 'direct|one': [], 'proxy|one': [] };
    for (let round = 1; round <= settings.rounds; round++) {
      // Alternate which goes first, so the machine's drift does not favour either.
      const order = round % 2 === 1 ? [direct, proxied] : [proxied, direct];
      for (const [kind, connections] of /** @type {const} */ ([
        ['full', settings.connections],
        ['one', 1],
      ])) {
        for (const target of order) {
          log(`round ${round}/${settings.rounds}: ${target.label}, ${connections} connection(s)`);
          runs[`${target.label}|${kind}`]?.push(await load(target, connections, settings.duration));
        }
      }
    }
    /** @param {string} key */
    const summary = (key) => {
      const list = runs[key] ?? [];
      return {
        runs: list.length,
        rps: median(list.map((r) => r.rps)),
        p50Ms: median(list.map((r) => r.latencyMs.p50)),
        p99Ms: median(list.map((r) => r.latencyMs.p99)),
        non2xx: list.reduce((s, r) => s + r.non2xx + r.errors, 0),
      };
    };
    // Every proxied call is one durable event: between the 2xx answers counted and the requests sent
    // (autocannon drops the ones still in flight when the time is up).
    const auditGaps = [...(runs['proxy|full'] ?? []), ...(runs['proxy|one'] ?? [])].filter(
      (r) => !r.audit || r.audit.allow < r.ok || r.audit.allow > r.sent,
    ).length;
    // Ratios per round (same round, adjacent runs), then their median.
    const ratio = median(
      (runs['proxy|full'] ?? []).map((r, i) => (100 * r.rps) / (runs['direct|full']?.[i]?.rps ?? NaN)),
    );
    const addedP50 = median(
      (runs['proxy|one'] ?? []).map(
        (r, i) => r.latencyMs.p50 - (runs['direct|one']?.[i]?.latencyMs.p50 ?? NaN),
      ),
    );

    const size = settings.proxyBodyMb * 1_000_000;
    log(`streaming ${settings.proxyBodyMb} MB up and ${settings.proxyBodyMb} MB down through the proxy`);
    const canReset = await vault.call('resetPeakRss');
    const before = await vault.call('peakRss');
    const up = await stream({
      url: `${vault.url}/v1/proxy/${service}/upload`,
      method: 'POST',
      headers: { ...proxied.headers, 'content-type': 'application/octet-stream' },
      upload: size,
    });
    const down = await stream({
      url: `${vault.url}/v1/proxy/${service}/download?bytes=${size}`,
      method: 'GET',
      headers: proxied.headers,
    });
    const after = await vault.call('peakRss');
    if (up.status !== 200 || down.status !== 200 || down.received !== size) {
      throw new Error(
        `the streamed bodies failed: upload ${up.status}, download ${down.status} ${down.received}`,
      );
    }
    const body = {
      mb: settings.proxyBodyMb,
      uploadMBps: settings.proxyBodyMb / up.seconds,
      downloadMBps: settings.proxyBodyMb / down.seconds,
      peakRssBeforeMiB: before === undefined ? undefined : before / 2 ** 20,
      peakRssGrowthMiB: before === undefined || after === undefined ? undefined : (after - before) / 2 ** 20,
      peakReset: canReset,
    };
    return {
      direct: summary('direct|full'),
      proxy: summary('proxy|full'),
      directOne: summary('direct|one'),
      proxyOne: summary('proxy|one'),
      ratioPercent: ratio,
      addedP50Ms: addedP50,
      auditGaps,
      body,
      runs,
    };
  } finally {
    await vault.stop();
    await upstream.stop();
  }
};

/** @typedef {Awaited<ReturnType<typeof benchProxy>>} ProxyResult */

/** @param {ProxyResult} r */
const verdicts = (r) => [
  judge('proxy-vs-direct', {
    subject: `sqlite, ${settings.connections} connections`,
    value: r.ratioPercent,
    detail: `${fmt(r.proxy.rps, 0)} vs ${fmt(r.direct.rps, 0)} req/s (medians of ${r.proxy.runs} rounds)${r.auditGaps ? `; ${r.auditGaps} runs with audit gaps` : ''}`,
  }),
  judge('proxy-added-p50', {
    subject: 'sqlite, 1 connection',
    value: r.addedP50Ms,
    detail: `p50 ${fmt(r.proxyOne.p50Ms, 3)} vs ${fmt(r.directOne.p50Ms, 3)} ms`,
  }),
  judge('proxy-stream-memory', {
    subject: 'sqlite',
    value: r.body.peakRssGrowthMiB ?? NaN,
    scale: r.body.mb,
    detail: `${r.body.mb} MB each way, ${fmt(r.body.uploadMBps, 0)} MB/s up, ${fmt(r.body.downloadMBps, 0)} MB/s down${r.body.peakReset ? '' : ' (peak not reset: an upper bound)'}`,
  }),
];

/**
 * @param {ProxyResult} r
 * @returns {[string, string][]}
 */
const report = (r) => {
  /** @type {{ what: string, connections: number, s: ProxyResult['direct'] }[]} */
  const rows = [
    { what: 'direct', connections: settings.connections, s: r.direct },
    { what: 'through the proxy', connections: settings.connections, s: r.proxy },
    { what: 'direct', connections: 1, s: r.directOne },
    { what: 'through the proxy', connections: 1, s: r.proxyOne },
  ];
  const lines = [
    'path               connections  req/s    p50 ms  p99 ms  non-2xx',
    ...rows.map(({ what, connections, s }) =>
      [
        what.padEnd(19),
        String(connections).padEnd(13),
        fmt(s.rps, 0).padEnd(9),
        fmt(s.p50Ms, 3).padEnd(8),
        fmt(s.p99Ms, 3).padEnd(8),
        String(s.non2xx),
      ].join(''),
    ),
    '',
    `proxy / direct: ${fmt(r.ratioPercent, 1)} %; added at p50 (one at a time): ${fmt(r.addedP50Ms, 3)} ms; runs with audit gaps: ${r.auditGaps}`,
    `${r.body.mb} MB up ${fmt(r.body.uploadMBps, 0)} MB/s, down ${fmt(r.body.downloadMBps, 0)} MB/s; vault peak RSS ${fmt(r.body.peakRssBeforeMiB, 0)} MiB, grew ${fmt(r.body.peakRssGrowthMiB, 1)} MiB`,
  ];
  return [['HTTP proxy vs the upstream directly', lines.join('\n')]];
};

/** @type {import('./section.mjs').Section<object, ProxyResult>} */
export const proxySection = { name: 'proxy', run: () => benchProxy(), verdicts, report };
