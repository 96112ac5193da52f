// Load runs: closed-loop with autocannon's programmatic API, open-loop at a fixed pace with node:http;
// and the server's own counters and duration histogram from /metrics.

import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

export const percentile = (sorted, p) => {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
};

/**
 * One autocannon run. Latencies are taken from its `response` events (float milliseconds from
 * process.hrtime) rather than from its result histogram, which keeps whole milliseconds only and so
 * reports 0 or 1 ms for everything a loopback server answers.
 * @param {{ url: string, connections: number, duration: number, method?: string,
 *   headers?: Record<string, string>, setupRequest?: (req: any, context: any) => any, overallRate?: number }} options
 *   `setupRequest`'s `context` is the connection's own object (autocannon's), kept between its requests.
 */
export const runLoad = async ({
  url,
  connections,
  duration,
  method = 'GET',
  headers = {},
  setupRequest,
  overallRate,
}) => {
  const latencies = [];
  const statuses = {};
  const instance = autocannon({
    url,
    connections,
    duration,
    method,
    headers,
    requests: setupRequest ? [{ setupRequest }] : undefined,
    // autocannon's rate limit is a quota per connection per second: each connection sends back to back
    // until it has made its share of the second, then waits for the next one (see runPaced).
    ...(overallRate ? { overallRate: Math.max(1, Math.round(overallRate)) } : {}),
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const ok = latencies.length;
  return {
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
    seconds: result.duration,
    rateAsked: overallRate,
    rps: ok / result.duration,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      mean: latencies.reduce((s, v) => s + v, 0) / Math.max(ok, 1),
    },
  };
};

/**
 * An open-loop run at a fixed pace: request k is due at `start + k / rate`, whatever happened to the
 * requests before it, over at most `connections` keep-alive sockets (a request that finds them all
 * busy waits for one, and that wait counts in its latency). This is what "N requests per second"
 * means for a latency target; autocannon's `overallRate` instead lets every connection send back to
 * back at the start of each second until it has made its share, so half its requests meet a saturated
 * server. A timer wakes at most every millisecond and sends what is due, so a request may leave up
 * to about a millisecond after its due time (`sendDelayMs`); its latency is measured from the moment
 * it is handed to the HTTP client, like autocannon's, and from its due time (`fromDueMs`).
 *
 * `next()` returns `{ method, path, headers, body }`, the same shape autocannon's `setupRequest` fills.
 */
export const runPaced = async ({ url, rate, duration, connections, next }) => {
  const { hostname, port } = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const total = Math.max(1, Math.round(rate * duration));
  const interval = 1000 / rate;
  const latencies = [];
  const fromDue = [];
  const sendDelays = [];
  const statuses = {};
  let errors = 0;
  let finished = 0;
  let sent = 0;
  const started = performance.now();
  let ended = started;
  await new Promise((resolve) => {
    const done = () => {
      finished += 1;
      if (finished === total) {
        ended = performance.now();
        resolve();
      }
    };
    const fire = (due) => {
      const { method = 'GET', path, headers = {}, body } = next({});
      const sentAt = performance.now();
      sendDelays.push(sentAt - due);
      const req = httpRequest({ agent, hostname, port, method, path, headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          const at = performance.now();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode >= 200 && res.statusCode < 300) {
            latencies.push(at - sentAt);
            fromDue.push(at - due);
          }
          done();
        });
      });
      req.on('error', () => {
        errors += 1;
        done();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        fire(started + sent * interval);
        sent += 1;
      }
      if (sent < total) setTimeout(tick, Math.min(1, Math.max(0, started + sent * interval - now)));
    };
    tick();
  });
  agent.destroy();
  for (const list of [latencies, fromDue, sendDelays]) list.sort((a, b) => a - b);
  const ok = latencies.length;
  const seconds = (ended - started) / 1000;
  return {
    requests: total,
    sent: total,
    ok,
    non2xx: total - ok - errors,
    errors,
    timeouts: 0,
    statuses,
    seconds,
    rateAsked: rate,
    rps: ok / seconds,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1),
      mean: latencies.reduce((s, v) => s + v, 0) / Math.max(ok, 1),
    },
    fromDueMs: { p50: percentile(fromDue, 50), p99: percentile(fromDue, 99) },
    sendDelayMs: { p50: percentile(sendDelays, 50), p99: percentile(sendDelays, 99) },
  };
};

const parseLabels = (text) =>
  Object.fromEntries([...text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));

/**
 * `tokenvault_http_request_duration_seconds` for one method and route, from a Prometheus text scrape:
 * cumulative bucket counts by upper bound, sum and count.
 */
export const scrapeDuration = async (baseUrl, method, route) => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const buckets = new Map();
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    const m = /^tokenvault_http_request_duration_seconds_(bucket|sum|count)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = parseLabels(m[2]);
    if (labels.method !== method || labels.route !== route) continue;
    const value = Number(m[3]);
    if (m[1] === 'bucket') buckets.set(labels.le === '+Inf' ? Infinity : Number(labels.le), value);
    else if (m[1] === 'sum') sum = value;
    else count = value;
  }
  return { buckets, sum, count };
};

/** Sum of a counter over the series whose labels include every one of `match`, from a Prometheus scrape. */
export const scrapeCounter = async (baseUrl, name, match) => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = parseLabels(m[2]);
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) total += Number(m[3]);
  }
  return total;
};

/** What happened between two scrapes: mean, share under 0.5 ms and 1 ms, p50/p99 as Prometheus estimates them. */
export const durationBetween = (before, after) => {
  const count = after.count - before.count;
  const bounds = [...after.buckets.keys()].sort((a, b) => a - b);
  const cumulative = bounds.map((le) => (after.buckets.get(le) ?? 0) - (before.buckets.get(le) ?? 0));
  // histogram_quantile(): linear interpolation inside the bucket the rank falls in.
  const quantile = (q) => {
    const rank = q * count;
    for (let i = 0; i < bounds.length; i++) {
      if (cumulative[i] >= rank) {
        if (bounds[i] === Infinity) return bounds[i - 1] ?? Number.NaN;
        const lower = i === 0 ? 0 : bounds[i - 1];
        const below = i === 0 ? 0 : cumulative[i - 1];
        const inBucket = cumulative[i] - below;
        return lower + (bounds[i] - lower) * (inBucket === 0 ? 0 : (rank - below) / inBucket);
      }
    }
    return Number.NaN;
  };
  const share = (le) => {
    const i = bounds.indexOf(le);
    return i < 0 || count === 0 ? Number.NaN : cumulative[i] / count;
  };
  return {
    count,
    meanMs: count === 0 ? Number.NaN : ((after.sum - before.sum) / count) * 1000,
    p50Ms: count === 0 ? Number.NaN : quantile(0.5) * 1000,
    p99Ms: count === 0 ? Number.NaN : quantile(0.99) * 1000,
    under0_5ms: share(0.0005),
    under1ms: share(0.001),
  };
};
