// Load runs with autocannon's programmatic API, and the server-side duration histogram from /metrics.

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
 */
export const runLoad = async ({ url, connections, duration, method = 'GET', headers = {}, setupRequest }) => {
  const latencies = [];
  const statuses = {};
  const instance = autocannon({
    url,
    connections,
    duration,
    method,
    headers,
    requests: setupRequest ? [{ setupRequest }] : undefined,
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
    rps: ok / result.duration,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      mean: latencies.reduce((s, v) => s + v, 0) / Math.max(ok, 1),
    },
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
