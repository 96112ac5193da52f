// The vault side of the oauth-refresh section, loaded by server-child.mjs: the OAuth app, OAuth
// credentials seeded in bulk with their refresh schedule, what the scheduler did with them, its cost
// with nothing due, and refreshes driven at a fixed rate.
//
// Seeding writes what a person's consent writes (`credentials` with the app's id and the user as
// subject, the data key, the sealed `access_token`/`refresh_token` version, the `oauth_refresh_state`
// row), 500 rows a statement and one transaction a batch, as seed.mjs does for api_key credentials:
// 100,000 connections one at a time would each pay a durable commit and measure nothing of interest.

import { platformProviderFor } from './seed.mjs';
import { defaultInjection, encryptField, newDataKey, newId, systemClock, toRow } from './vault-modules.mjs';

const rowsPerStatement = 500;
const namespace = 'default';

/** The OAuth app the credentials were connected through, added as an operator would (admin API). */
export const setupOAuthApp = async (
  { vault, token },
  { name, tokenUrl, clientId, clientSecret, resource },
) => {
  const response = await vault.app.inject({
    method: 'POST',
    url: '/v1/admin/oauth/apps',
    headers: { authorization: `Bearer ${token}` },
    payload: {
      provider: 'generic',
      name,
      client_id: clientId,
      client_secret: clientSecret,
      endpoints: { token: tokenUrl },
      resource,
    },
  });
  if (response.statusCode !== 201) {
    throw new Error(
      `POST /v1/admin/oauth/apps answered ${response.statusCode}: ${response.body.slice(0, 300)}`,
    );
  }
  return response.json().id;
};

/**
 * When credential `i` of `count` is due and when its access token expires: due times spread evenly
 * over `windowMs` from `start`, each token expiring `lagMs` later (the vault's refresh margin).
 */
export const slotOf = ({ start, windowMs, count, lagMs }, i) => {
  const due = start + Math.floor((i / count) * windowMs);
  return { due, expiresAt: due + lagMs };
};

/**
 * `tokens.length` (or `count`, with placeholder tokens for a schedule that is never due) oauth2
 * credentials named `appName`, subject `${subjectPrefix}${i}`, each with its refresh state: due and
 * expiring as `slotOf(window, i)` says.
 */
export const seedOAuthCredentials = async (
  { vault, dataDir },
  { appId, appName, subjectPrefix, tokens, count = tokens?.length ?? 0, window },
) => {
  const provider = await platformProviderFor(vault, dataDir);
  const { db } = vault.store;
  const injection = defaultInjection('oauth2', ['access_token', 'refresh_token']);
  const started = performance.now();
  for (let start = 0; start < count; start += rowsPerStatement) {
    const n = Math.min(rowsPerStatement, count - start);
    const deks = Array.from({ length: n }, () => newDataKey());
    const wrapped = await provider.wrap(deks);
    const now = systemClock.now().toISOString();
    const dataKeys = [];
    const credentials = [];
    const versions = [];
    const states = [];
    for (let k = 0; k < n; k++) {
      const i = start + k;
      const id = newId();
      const dataKeyId = newId();
      dataKeys.push({
        id: dataKeyId,
        namespace,
        credential_id: id,
        wrapped_key: wrapped[k].wrapped,
        kek_ref: wrapped[k].ref,
        created_at: now,
        updated_at: now,
      });
      credentials.push(
        toRow({
          id,
          namespace,
          name: appName,
          type: 'oauth2',
          description: '',
          scopes: ['api:read', 'api:write'],
          allowedHosts: [],
          baseUrl: null,
          injection,
          status: 'active',
          expiresAt: null,
          subject: `${subjectPrefix}${i}`,
          oauthAppId: appId,
          dataKeyId,
          version: 1,
          createdAt: now,
          updatedAt: now,
        }),
      );
      const secret = tokens?.[i] ?? {
        access_token: `idle-access-${i}-${id}`,
        refresh_token: `idle-refresh-${i}-${id}`,
      };
      const fields = { ...secret, token_type: 'Bearer' };
      const sealed = Object.fromEntries(
        Object.entries(fields).map(([field, value]) => [
          field,
          encryptField(deks[k], dataKeyId, { namespace, credentialId: id, version: 1, field }, value),
        ]),
      );
      versions.push({ credential_id: id, version: 1, ciphertexts: JSON.stringify(sealed), created_at: now });
      const { due, expiresAt } = slotOf(window, i);
      states.push({
        credential_id: id,
        namespace,
        status: 'active',
        secret_version: 1,
        access_expires_at: new Date(expiresAt).toISOString(),
        expiry_assumed: 0,
        next_refresh_at: new Date(due).toISOString(),
        last_refresh_at: null,
        failures: 0,
        last_error: null,
        lease_owner: null,
        lease_expires_at: null,
        fence: 0,
        updated_at: now,
      });
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('data_keys').values(dataKeys).execute();
      await trx.insertInto('credentials').values(credentials).execute();
      await trx.insertInto('credential_versions').values(versions).execute();
      await trx.insertInto('oauth_refresh_state').values(states).execute();
    });
  }
  return { count, seconds: (performance.now() - started) / 1000 };
};

/** The credentials of `subjectPrefix` and their refresh states (`i` is the number in the subject). */
const statesOf = async (db, subjectPrefix) => {
  const rows = await db
    .selectFrom('credentials as c')
    .innerJoin('oauth_refresh_state as s', 's.credential_id', 'c.id')
    .select(['c.id', 'c.subject', 'c.current_version', 's.status', 's.last_refresh_at', 's.failures'])
    .where('c.subject', 'like', `${subjectPrefix}%`)
    .execute();
  return rows.map((row) => ({ ...row, i: Number(String(row.subject).slice(subjectPrefix.length)) }));
};

/** How many of `subjectPrefix`'s credentials have been refreshed so far. */
export const refreshProgress = async ({ vault }, { subjectPrefix }) =>
  (await statesOf(vault.store.db, subjectPrefix)).filter((row) => row.last_refresh_at !== null).length;

/**
 * What the scheduler did with the window's credentials: refreshed, late (refreshed after the expiry
 * they were seeded with, or not at all), the lag after the due time, failures.
 */
export const refreshOutcome = async ({ vault }, { subjectPrefix, window }) => {
  const rows = await statesOf(vault.store.db, subjectPrefix);
  let refreshed = 0;
  let late = 0;
  let failures = 0;
  let notActive = 0;
  let first = Infinity;
  let last = 0;
  const lags = [];
  for (const row of rows) {
    const { due, expiresAt } = slotOf(window, row.i);
    failures += Number(row.failures);
    if (row.status !== 'active') notActive += 1;
    const at = row.last_refresh_at === null ? Infinity : Date.parse(row.last_refresh_at);
    if (at > expiresAt) late += 1;
    if (at === Infinity) continue;
    refreshed += 1;
    first = Math.min(first, at);
    last = Math.max(last, at);
    lags.push(at - due);
  }
  lags.sort((a, b) => a - b);
  const pick = (p) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))];
  return {
    credentials: rows.length,
    refreshed,
    late,
    failures,
    notActive,
    firstRefreshAt: first,
    lastRefreshAt: last,
    lagMs: { p50: pick(50), p99: pick(99), max: lags.at(-1) },
  };
};

/**
 * The scheduler's pass with nothing due, as its worker runs it every poll: CPU per pass over
 * `passes` passes after `warmup`. Also the adoption sweep (once a minute) on its own.
 */
export const idlePasses = async ({ vault }, { passes, warmup, adoptions }) => {
  const { scheduler } = vault.services.oauthRefresh;
  for (let i = 0; i < warmup; i++) await scheduler.tick();
  let due = 0;
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < passes; i++) due += await scheduler.tick();
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  const adoptCpu = process.cpuUsage();
  for (let i = 0; i < adoptions; i++) await scheduler.adopt();
  const adoptUsed = process.cpuUsage(adoptCpu);
  const states = await vault.store.db
    .selectFrom('oauth_refresh_state')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return {
    states: Number(states.n),
    passes,
    refreshedDuring: due,
    cpuMsPerPass: (used.user + used.system) / 1000 / passes,
    wallMsPerPass: wallMs / passes,
    adoptCpuMs: adoptions > 0 ? (adoptUsed.user + adoptUsed.system) / 1000 / adoptions : undefined,
  };
};

/**
 * Forced refreshes of `subjectPrefix`'s credentials, started at `rate` a second (round robin, at
 * most `maxInFlight` at once) for `seconds`: the same refresher, lease and token endpoint as the
 * scheduler's. Resolves when the last one has finished.
 */
export const refreshAtRate = async ({ vault }, { subjectPrefix, rate, seconds, maxInFlight = 64 }) => {
  const { refresher } = vault.services.oauthRefresh;
  const ids = (await statesOf(vault.store.db, subjectPrefix)).map((row) => row.id);
  const outcomes = {};
  const pending = new Set();
  let started = 0;
  let skipped = 0;
  let next = Math.floor(Math.random() * ids.length);
  const begin = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - begin < seconds * 1000) {
    const owed = Math.floor(((performance.now() - begin) / 1000) * rate) - started - skipped;
    for (let k = 0; k < owed; k++) {
      if (pending.size >= maxInFlight) {
        skipped += 1;
        continue;
      }
      const id = ids[next++ % ids.length];
      started += 1;
      const run = refresher
        .refresh(namespace, id, { trigger: 'admin' })
        .then((result) => (outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1))
        .catch(() => (outcomes.error = (outcomes.error ?? 0) + 1))
        .finally(() => pending.delete(run));
      pending.add(run);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(pending);
  const used = process.cpuUsage(cpu);
  const elapsed = (performance.now() - begin) / 1000;
  return {
    started,
    skipped,
    outcomes,
    seconds: elapsed,
    perSecond: (outcomes.refreshed ?? 0) / elapsed,
    cpuMs: (used.user + used.system) / 1000,
  };
};
