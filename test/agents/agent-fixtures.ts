import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { expect } from 'vitest';
import { installAgentAuth } from '../../src/http/agent-auth.js';
import { type ErrorBody, installErrorHandler } from '../../src/http/error-handler.js';
import { createMetrics } from '../../src/http/metrics.js';
import type { Clock } from '../../src/lib/clock.js';
import type { TestVault } from '../helpers/vault.js';

export const audience = 'https://vault.test';

export const codeOf = (body: unknown) => (body as ErrorBody).error?.code;

export interface Answer {
  status: number;
  body: unknown;
  text: string;
}

/** An admin request through `inject()`, with any method (the shared helper has no PUT). */
export const admin = async (
  t: TestVault,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> => {
  const response = await t.vault.app.inject({
    method,
    url,
    headers: {
      authorization: `Bearer ${t.rootToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  let parsed: unknown;
  try {
    parsed = response.body === '' ? undefined : JSON.parse(response.body);
  } catch {
    parsed = undefined;
  }
  return { status: response.statusCode, body: parsed, text: response.body };
};

export interface CreatedAgent {
  id: string;
  name: string;
  api_key: string;
  key_id: string;
}

export const createAgent = async (t: TestVault, name: string, extra: Record<string, unknown> = {}) => {
  const response = await admin(t, 'POST', '/v1/admin/agents', { name, ...extra });
  expect(response.status, response.text).toBe(201);
  return response.body as CreatedAgent;
};

/**
 * A minimal app around the real `authenticateAgent` (the vault's authenticator and audit writer), so
 * a test sees the principal itself; `/whoami` answers with it.
 */
export const startAuthProbe = async (t: TestVault, clock: Clock, authFailureLimit = 1000) => {
  const app: FastifyInstance = Fastify();
  installErrorHandler(app, { metrics: createMetrics(), bodyLimit: 65_536 });
  installAgentAuth(app, {
    authenticator: t.vault.services.agentAuthenticator,
    access: t.vault.services.access,
    audit: t.vault.services.audit,
    authFailureLimit,
    clock,
  });
  app.get('/whoami', async (request) => app.authenticateAgent(request));
  await app.ready();
  return {
    app,
    async whoami(token: string | null, options: { ip?: string; userAgent?: string } = {}): Promise<Answer> {
      const response = await app.inject({
        method: 'GET',
        url: '/whoami',
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          'user-agent': options.userAgent ?? 'agent-test/1',
        },
        remoteAddress: options.ip ?? '203.0.113.7',
      });
      return { status: response.statusCode, body: JSON.parse(response.body) as unknown, text: response.body };
    },
  };
};

/** The `agent.authenticate` refusals recorded so far, oldest first. */
export const authRefusals = async (t: TestVault) =>
  t.vault.store.db
    .selectFrom('audit_events')
    .select([
      'actor_type',
      'actor_id',
      'decision',
      'reason',
      'client_ip',
      'user_agent',
      'request_id',
      'namespace',
      'details',
    ])
    .where('action', '=', 'agent.authenticate')
    .orderBy('seq')
    .execute();

/** Events of one action, oldest first. */
export const eventsOf = async (t: TestVault, action: string) =>
  t.vault.store.db
    .selectFrom('audit_events')
    .select(['actor_type', 'actor_id', 'target_id', 'decision', 'reason', 'details', 'namespace'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();

export interface SigningKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

export const newSigningKey = async (kid = `k-${randomUUID().slice(0, 8)}`): Promise<SigningKey> => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }, kid };
};

/** An RFC 7523 client assertion as an agent signs it; times are relative to `now`. */
export const signAssertion = (
  key: SigningKey,
  claims: { agentId: string; now: Date; aud?: string; expIn?: number; jti?: string; iat?: number },
) => {
  const now = Math.floor(claims.now.getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(claims.agentId)
    .setSubject(claims.agentId)
    .setAudience(claims.aud ?? audience)
    .setIssuedAt(claims.iat ?? now)
    .setExpirationTime(now + (claims.expIn ?? 60))
    .setJti(claims.jti ?? randomUUID())
    .sign(key.privateKey);
};

/** A token with `alg: none` and no signature, as an attacker would try. */
export const unsignedToken = (claims: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
    JSON.stringify(claims),
  ).toString('base64url')}.`;

/** Serves a JWK set over plain http on loopback (allowed for loopback only). */
export const serveJwks = async (jwks: { keys: JWK[] }) => {
  let requests = 0;
  const server: Server = createServer((_request, response) => {
    requests += 1;
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    requests: () => requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
