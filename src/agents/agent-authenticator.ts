import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Clock } from '../lib/clock.js';
import { constantTimeEqual, hashToken } from '../lib/token-hash.js';
import type { Store } from '../store/database.js';
import { accessScope, type GenerationCache, type GenerationView } from '../store/generation-cache.js';
import { assertionAlgorithms, issuerAlgorithms } from './agent-jwks.js';
import { agentKeyRepo, agentRepo, bindingRepo, issuerRepo, prepareKeyByHash } from './agent-repo.js';
import { claimsMatch, isAgentId } from './agent-rules.js';
import type { Agent, AgentAuthenticator, AgentAuthRequest, AgentPrincipal } from './agent-types.js';
import { createReplayGuard } from './jwt-replay.js';
import { type AuthFailureDetails, authFailure, remoteKeyGetter, verifyJwt } from './jwt-verify.js';
import { createRemoteKeySets, type RemoteKeySets } from './remote-keys.js';

export interface AgentAuthenticatorDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  /** Caches the API-key lookup until its namespace changes (generation-cache.ts). */
  access: GenerationCache;
  clock: Clock;
  /** What `aud` of an agent's JWT assertion must be (the vault's own URL by default). */
  vaultAudience: string;
  /** Shared discovery/JWKS caches; created (with `fetchJwks`) when not given. */
  remoteKeys?: Pick<RemoteKeySets, 'issuerKeys' | 'urlKeys'>;
  /** The fetch used for remote key sets and discovery when `remoteKeys` is not given. */
  fetchJwks?: typeof fetch;
  /** Tolerated clock difference for exp, nbf and iat. */
  clockSkewSeconds?: number;
}

/** RFC 7523 assertions are for one request: `exp` at most this far ahead. */
export const maxAssertionLifetimeSeconds = 300;
const maxTokenLength = 16_384;
const maxJtiLength = 256;
const lastUsedResolutionMs = 60_000;
const maxCachedKeySets = 1000;

const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const agentDetails = (
  agent: Pick<Agent, 'id' | 'name' | 'namespace'>,
  method: string,
  extra: AuthFailureDetails = {},
) => ({
  // For the audit record only (audit-subjects.ts), never for the unauthenticated caller.
  agent_id: agent.id,
  agent_name: agent.name,
  namespace: agent.namespace,
  method,
  ...extra,
});

/**
 * Agent authentication, three ways: an API key (`tv_agent_…`), a JWT client assertion signed with a
 * key the agent registered (RFC 7523 style: `iss` = `sub` = the agent id, `aud` = the vault), or an
 * OIDC workload identity token from a trusted issuer, mapped to an agent by a binding. An API key's
 * row (with its agent's status) is cached until a change to a key or an agent of its namespace (the
 * access cache's namespace scope, generation-cache.ts), so disabling an agent or revoking a key holds
 * on the very next request, on every replica; expiry is checked on every request.
 */
export const createAgentAuthenticator = (deps: AgentAuthenticatorDeps): AgentAuthenticator => {
  const { store, clock, vaultAudience } = deps;
  const { db } = store;
  const keyQuery = prepareKeyByHash(store);
  const keyByHash = deps.access.lookup({
    key: (hash: string) => hash,
    load: (hash: string) => keyQuery.first({ hash }),
    maxEntries: 10_000,
    // A key and its agent change only by the namespace's scope (the kill switch included).
    scopes: (_hash, row) => [accessScope.namespace(row.namespace), accessScope.namespace(row.key_namespace)],
    name: 'agent_key',
  });
  const skew = deps.clockSkewSeconds ?? 30;
  const remoteKeys = deps.remoteKeys ?? createRemoteKeySets({ clock, fetch: deps.fetchJwks });
  const replay = createReplayGuard({ db, clock });
  const lastWritten = new Map<string, number>();
  const localKeySets = new Map<string, JWTVerifyGetKey>();

  const localKeySet = (jwks: NonNullable<Agent['jwks']>): JWTVerifyGetKey => {
    const cacheKey = JSON.stringify(jwks);
    let keySet = localKeySets.get(cacheKey);
    if (!keySet) {
      keySet = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
      if (localKeySets.size >= maxCachedKeySets)
        localKeySets.delete(localKeySets.keys().next().value as string);
      localKeySets.set(cacheKey, keySet);
    }
    return keySet;
  };

  const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);

  /** `iat` in the future means a wrong clock or a forged time; jose checks it only with maxTokenAge. */
  const assertIssuedInPast = (payload: JWTPayload, details: AuthFailureDetails, what: string) => {
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds() + skew) {
      throw authFailure(
        'jwt_invalid',
        `The ${what} is issued in the future (iat); check the clock.`,
        details,
      );
    }
  };

  const withApiKey = async (token: string, view: GenerationView | undefined): Promise<AgentPrincipal> => {
    const hash = hashToken(token);
    const row = await keyByHash(view ?? (await deps.access.view()), hash);
    if (!row || !constantTimeEqual(row.key_hash, hash)) {
      throw authFailure('agent_key_invalid', undefined, { method: 'api_key' });
    }
    const details = agentDetails(
      { id: row.agent_id, name: row.agent_name, namespace: row.namespace },
      'api_key',
      {
        key_id: row.key_id,
      },
    );
    if (row.revoked_at !== null) throw authFailure('agent_key_revoked', undefined, details);
    const now = clock.now();
    if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) {
      throw authFailure('agent_key_expired', undefined, details);
    }
    if (row.agent_status !== 'active') throw authFailure('agent_disabled', undefined, details);
    // `last_used_at` is a hint for rotation, not an audit record: written at most once a minute per key.
    if (now.getTime() - (lastWritten.get(row.key_id) ?? 0) >= lastUsedResolutionMs) {
      if (lastWritten.size >= 100_000) lastWritten.clear();
      lastWritten.set(row.key_id, now.getTime());
      await agentKeyRepo.touch(db, row.key_id, now.toISOString());
    }
    return {
      agentId: row.agent_id,
      agentName: row.agent_name,
      namespace: row.namespace,
      method: 'api_key',
      credentialRef: row.key_id,
    };
  };

  const withAssertion = async (token: string, claims: JWTPayload, alg: string): Promise<AgentPrincipal> => {
    const what = 'JWT assertion';
    if (!(assertionAlgorithms as readonly string[]).includes(alg)) {
      throw authFailure(
        'jwt_invalid',
        `The JWT alg "${alg.slice(0, 20)}" is not accepted; sign with ${assertionAlgorithms.join(', ')}.`,
        { method: 'jwt' },
      );
    }
    const { iss, sub } = claims;
    if (typeof iss !== 'string' || iss !== sub || !isAgentId(iss)) {
      throw authFailure('jwt_invalid', 'A JWT assertion needs iss and sub both set to the agent id.', {
        method: 'jwt',
      });
    }
    const agent = await agentRepo.findById(db, iss);
    if (!agent) throw authFailure('jwt_invalid', `No agent has id ${iss}.`, { method: 'jwt' });
    const details = agentDetails(agent, 'jwt');
    let getKey: JWTVerifyGetKey;
    if (agent.jwks) getKey = localKeySet(agent.jwks);
    else if (agent.jwksUrl) getKey = remoteKeyGetter(remoteKeys.urlKeys(agent.jwksUrl), agent.jwksUrl);
    else {
      throw authFailure(
        'jwt_invalid',
        // Not the agent's name: the caller is not authenticated, and the id is all it gave.
        'This agent has no registered public key; register one with `tokenvault agent jwks set`.',
        details,
      );
    }
    const payload = await verifyJwt(
      token,
      getKey,
      {
        algorithms: [...assertionAlgorithms],
        audience: vaultAudience,
        issuer: agent.id,
        subject: agent.id,
        requiredClaims: ['exp', 'jti'],
        currentDate: clock.now(),
        clockTolerance: skew,
      },
      details,
      what,
    );
    assertIssuedInPast(payload, details, what);
    const exp = payload.exp as number;
    if (exp > nowSeconds() + maxAssertionLifetimeSeconds + skew) {
      throw authFailure('jwt_lifetime_too_long', undefined, details);
    }
    const jti = payload.jti;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > maxJtiLength) {
      throw authFailure('jwt_invalid', `jti must be a string of 1 to ${maxJtiLength} characters.`, details);
    }
    if (agent.status !== 'active') throw authFailure('agent_disabled', undefined, details);
    // Kept until the assertion could no longer pass the exp check, so a replay can never slip through.
    if (!(await replay.consume(agent.id, jti, new Date((exp + skew) * 1000)))) {
      throw authFailure('jwt_replayed', undefined, details);
    }
    return {
      agentId: agent.id,
      agentName: agent.name,
      namespace: agent.namespace,
      method: 'jwt',
      credentialRef: jti,
    };
  };

  const withWorkloadToken = async (token: string, iss: string, alg: string): Promise<AgentPrincipal> => {
    const what = 'workload token';
    // Only issuers an admin trusted are ever fetched from: a token cannot point the vault at a URL.
    const trusted = await issuerRepo.findByIssuer(db, iss);
    if (trusted.length === 0) {
      throw authFailure(
        'issuer_untrusted',
        `The token's issuer ${iss.slice(0, 200)} is not trusted; an admin can trust it with \`tokenvault issuer trust\`.`,
        { method: 'oidc', issuer: iss.slice(0, 200) },
      );
    }
    const details: AuthFailureDetails = { method: 'oidc', issuer: iss.slice(0, 200) };
    if (!(issuerAlgorithms as readonly string[]).includes(alg)) {
      throw authFailure('jwt_invalid', `The token alg "${alg.slice(0, 20)}" is not accepted.`, details);
    }
    const getKey = remoteKeyGetter(await remoteKeys.issuerKeys(iss), iss);
    const payload = await verifyJwt(
      token,
      getKey,
      {
        algorithms: [...issuerAlgorithms],
        issuer: iss,
        requiredClaims: ['exp'],
        currentDate: clock.now(),
        clockTolerance: skew,
      },
      details,
      what,
    );
    assertIssuedInPast(payload, details, what);
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    const forAudience = trusted.filter((issuer) => audiences.includes(issuer.audience));
    if (forAudience.length === 0) {
      throw authFailure(
        'jwt_audience_invalid',
        // Not the configured audience: an unauthenticated caller does not learn it by asking wrongly.
        `The token's audience is not one this vault accepts from ${iss.slice(0, 200)}; request the token for the audience the vault's operator configured for this issuer.`,
        details,
      );
    }
    const bindings = await bindingRepo.listForIssuers(
      db,
      forAudience.map((issuer) => issuer.id),
    );
    const matched = bindings.filter((binding) => claimsMatch(binding.claims, payload));
    const agentIds = [...new Set(matched.map((binding) => binding.agentId))];
    if (agentIds.length !== 1) {
      throw authFailure(
        'workload_not_bound',
        agentIds.length === 0
          ? undefined
          : 'The workload token matches bindings of several agents; make the bindings specific enough to name one.',
        details,
      );
    }
    const binding = matched[0]!;
    const agent = await agentRepo.findById(db, binding.agentId);
    if (!agent) throw authFailure('workload_not_bound', undefined, details);
    const issuerName = forAudience.find((issuer) => issuer.id === binding.issuerId)?.name ?? null;
    if (agent.status !== 'active') {
      throw authFailure(
        'agent_disabled',
        undefined,
        agentDetails(agent, 'oidc', { issuer: issuerName ?? iss }),
      );
    }
    return {
      agentId: agent.id,
      agentName: agent.name,
      namespace: agent.namespace,
      method: 'oidc',
      credentialRef: issuerName,
    };
  };

  return {
    async authenticate({ token, view }: AgentAuthRequest): Promise<AgentPrincipal> {
      if (token.startsWith('tv_agent_')) return withApiKey(token, view);
      if (token.length > maxTokenLength || !jwtShape.test(token)) {
        throw authFailure('agent_key_invalid', 'The bearer token is neither an agent key nor a JWT.', {});
      }
      let header: ReturnType<typeof decodeProtectedHeader>;
      let claims: JWTPayload;
      try {
        header = decodeProtectedHeader(token);
        claims = decodeJwt(token);
      } catch {
        throw authFailure('jwt_invalid', 'The bearer token is not a well-formed JWT.', { method: 'jwt' });
      }
      const alg = typeof header.alg === 'string' ? header.alg : 'none';
      // An OIDC issuer is an https URL; an agent's own assertion names the agent id instead.
      if (typeof claims.iss === 'string' && /^https?:\/\//i.test(claims.iss)) {
        return withWorkloadToken(token, claims.iss, alg);
      }
      return withAssertion(token, claims, alg);
    },
  };
};
