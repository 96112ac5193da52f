import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { type AuditContext, auditedChange, auditedUse, systemContext } from '../audit/audit-context.js';
import type { AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import type { CredentialService } from '../credentials/credential-service.js';
import { assertCredentialName, assertNamespace, validateScopes } from '../credentials/credential-types.js';
import { decryptField, encryptField } from '../crypto/envelope.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import { grantTargets } from '../grants/grant-repo.js';
import type { GrantService } from '../grants/grant-service.js';
import type { DataKeyService } from '../keys/data-key-service.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Store } from '../store/database.js';
import {
  authorizationServerOf,
  authorizationUrl,
  clientAuthOf,
  type FlowDeps,
  newAuthorizationSecrets,
  requestOptions,
  usesOidc,
} from './authorization-flow.js';
import {
  type ConnectFlow,
  connectSessionRepo,
  type ConnectSessionRow,
  hashOf,
} from './connect-session-repo.js';
import { devicePollRepo } from './device-poll-repo.js';
import { createDevicePoller, type DeviceInfo, type DevicePollerOptions } from './device-poller.js';
import { normalizeTokenResponse } from './normalize-token-response.js';
import type { AgentConnectFlow } from './oauth-app-repo.js';
import type { OAuthAppService, OpenedOAuthApp } from './oauth-app-service.js';
import { resolveApi } from './provider-template.js';
import { readTokenResponse } from './token-client.js';
import type { TokenSet } from './token-set.js';
import type { ConnectedToken } from './refresh/connected-token.js';
import { earliestExpiry, tokenSetToSecret } from './refresh/token-fields.js';

export interface StartConnectInput {
  /** The OAuth app's name (by default the provider's). */
  app: string;
  /** The agent (id or name) the grant is for. */
  agent: string;
  /** The end user: the credential's subject. */
  user: string;
  scopes?: string[] | undefined;
  /** The grant's lifetime (`1h` … `30d`); absent: until revoked. */
  grantTtl?: string | undefined;
  reveal?: boolean | undefined;
  /** The credential's name; absent: the app's name. */
  credential?: string | undefined;
  flow?: ConnectFlow | undefined;
}

export interface ConnectLink {
  id: string;
  url: string;
  expiresAt: string;
  device?: DeviceInfo | undefined;
}

export interface ConnectServiceDeps extends FlowDeps {
  store: Pick<Store, 'db'>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  apps: Pick<OAuthAppService, 'open' | 'openById' | 'redirectUri' | 'list'>;
  dataKeys: Pick<DataKeyService, 'open'>;
  credentials: Pick<CredentialService, 'create' | 'update' | 'get'>;
  grants: Pick<GrantService, 'create'>;
  publicUrl: string;
  /** How long a connect link works (default 15 minutes). */
  sessionTtlSeconds?: number | undefined;
  /**
   * Told of every token a connection stored that can be renewed, by its refresh token or by a new
   * client-credentials grant (the refresh service schedules its renewal from the expiry the provider
   * gave: oauth/refresh/connected-token.ts).
   */
  onConnected?: ((token: ConnectedToken) => Promise<void>) | undefined;
  /** Where the device-flow poller reports polls that failed (it tries again). */
  logger?: { warn(object: object, message: string): void } | undefined;
  /** Tuning of the device-flow poller (tests). */
  devicePolls?: Partial<DevicePollerOptions> | undefined;
}

/** What the vault's own consent page shows. */
export interface ConnectPageView {
  app: string;
  provider: string;
  agent: string;
  user: string;
  scopes: string[];
  flow: ConnectFlow;
  device: DeviceInfo | null;
}

type SecretName = 'link' | 'verifier' | 'nonce' | 'device_code';

const nameOf = (row: ConnectSessionRow) => row.id;

/**
 * Connect sessions: a short-lived, single-use link that lets one person (the end user) connect one
 * provider for one agent. Steps: `start` (an admin or an agent's `authorization_required`) → the
 * person's `page` → `begin` (state, PKCE S256, nonce, to the provider) → `callback` (state, `iss`,
 * code exchange, ID token nonce) → the credential (subject = the user, tokens encrypted) and the
 * grant. The device flow replaces the two middle steps with a poll. Every step is audited, refusals
 * too, and no token, code, verifier or nonce is ever in a message, a log line or an event.
 */
export const createConnectService = (deps: ConnectServiceDeps) => {
  const { db } = deps.store;
  const { audit, clock } = deps;
  const ttlSeconds = deps.sessionTtlSeconds ?? 900;
  const linkOf = (token: string) => `${deps.publicUrl.replace(/\/+$/, '')}/connect/${token}`;

  const aadOf = (row: Pick<ConnectSessionRow, 'namespace' | 'id'>, field: SecretName) => ({
    namespace: row.namespace,
    credentialId: row.id,
    version: 0,
    field,
  });

  /** Session secrets sealed under the app's data key, bound to the session and the field. */
  const seal = async (
    opened: OpenedOAuthApp,
    row: Pick<ConnectSessionRow, 'namespace' | 'id'>,
    values: Partial<Record<SecretName, string>>,
  ): Promise<string> => {
    const dek = await deps.dataKeys.open(opened.app.dataKeyId);
    const sealed: Record<string, string> = {};
    for (const [field, value] of Object.entries(values)) {
      if (value !== undefined) {
        sealed[field] = encryptField(dek, opened.app.dataKeyId, aadOf(row, field as SecretName), value);
      }
    }
    return JSON.stringify(sealed);
  };

  const unseal = async (opened: OpenedOAuthApp, row: ConnectSessionRow) => {
    const sealed = JSON.parse(row.secrets ?? '{}') as Record<string, string>;
    const dek = await deps.dataKeys.open(opened.app.dataKeyId);
    const open = (field: SecretName) =>
      sealed[field] === undefined
        ? undefined
        : decryptField(dek, opened.app.dataKeyId, aadOf(row, field), sealed[field]).toString('utf8');
    return {
      link: open('link'),
      verifier: open('verifier'),
      nonce: open('nonce'),
      deviceCode: open('device_code'),
    };
  };

  const openApp = async (row: ConnectSessionRow) => {
    const opened = await deps.apps.openById(row.namespace, row.app_id);
    if (!opened) throw new VaultError('connect_provider_error', 'The OAuth app of this link was removed.');
    return opened;
  };

  /** The session a link token names, still usable. Refusals name the stable reason. */
  const usable = (row: ConnectSessionRow | undefined): ConnectSessionRow => {
    if (!row) throw new VaultError('connect_session_not_found');
    if (['exchanging', 'completed', 'failed'].includes(row.status))
      throw new VaultError('connect_session_used');
    if (row.expires_at <= clock.now().toISOString()) throw new VaultError('connect_session_expired');
    return row;
  };

  const fail = async (row: ConnectSessionRow, error: unknown) => {
    const code = isVaultError(error) ? error.code : 'internal_error';
    await connectSessionRepo.update(db, row.id, {
      status: 'failed',
      error_code: code,
      updated_at: clock.now().toISOString(),
    });
  };

  /**
   * Stores what the provider gave: an `oauth2` credential whose subject is the user (a new version of
   * it when this user connected before), then the agent's grant on it.
   */
  const store = async (row: ConnectSessionRow, opened: OpenedOAuthApp, token: TokenSet) => {
    const secret = tokenSetToSecret(token);
    // The credential itself expires with its access token only when nothing can renew it: a token
    // with a refresh token, or the app's own client-credentials token, is the refresh service's to
    // keep valid, and an agent asking after the access token's expiry gets a renewed one, not
    // `credential_expired`.
    const renewable = token.refreshToken !== undefined || row.flow === 'client_credentials';
    const credentialExpiry = renewable ? null : (token.expiresAt ?? null);
    const requested = JSON.parse(row.scopes) as string[];
    const scopes = validateScopes(token.scopes ?? requested);
    const api = resolveApi(opened.provider, opened.client.settings?.parameters, token);
    const ctx: AuditContext = systemContext;
    // A client-credentials token is the app's own, no end user's: a shared credential.
    const subject = row.flow === 'client_credentials' ? undefined : row.subject;
    const existing = await deps.credentials
      .get(row.namespace, row.credential_name, subject)
      .catch(() => undefined);
    const credential =
      existing && existing.subject === (subject ?? null)
        ? await deps.credentials.update(
            row.namespace,
            row.credential_name,
            { secret, scopes, expiresAt: credentialExpiry, status: 'active' },
            ctx,
            subject,
          )
        : await deps.credentials.create(
            row.namespace,
            {
              name: row.credential_name,
              type: 'oauth2',
              secret,
              description: subject
                ? `${opened.app.name} for ${subject}`
                : `${opened.app.name} (client credentials)`,
              scopes,
              subject: subject ?? null,
              oauthAppId: opened.app.id,
              expiresAt: credentialExpiry,
              ...(api ? { baseUrl: api.baseUrl, allowedHosts: api.hosts } : {}),
            },
            ctx,
          );
    await deps.grants.create(
      row.namespace,
      {
        agent: row.agent_id,
        credential: row.credential_name,
        user: subject,
        reveal: Number(row.reveal) === 1,
        ...(row.grant_ttl_seconds === null ? { untilRevoked: true } : { ttl: row.grant_ttl_seconds }),
      },
      ctx,
    );
    if (renewable) {
      await deps.onConnected?.({
        namespace: row.namespace,
        credentialId: credential.id,
        version: credential.version,
        accessExpiresAt: earliestExpiry(token) ?? null,
        expiryAssumed: token.expiresAtAssumed,
        refreshable: true,
      });
    }
    await connectSessionRepo.update(db, row.id, {
      status: 'completed',
      credential_id: credential.id,
      secrets: null,
      updated_at: clock.now().toISOString(),
    });
    return credential;
  };

  /** The token endpoint's answer, read as the catalog says; a refusal is `connect_provider_error`. */
  const tokensFrom = async (opened: OpenedOAuthApp, response: Response): Promise<TokenSet> => {
    const outcome = normalizeTokenResponse(opened.provider, await readTokenResponse(response), clock.now());
    if (!outcome.ok) {
      throw new VaultError(
        outcome.failure.code === 'access_denied' ? 'connect_denied' : 'connect_provider_error',
        `The provider refused the token request (${safeCode(outcome.failure.code)}); nothing was stored.`,
      );
    }
    return outcome.token;
  };

  const poller = createDevicePoller({
    store: deps.store,
    clock,
    logger: deps.logger,
    options: deps.devicePolls,
    poll: async (sessionId) => {
      const row = await db
        .selectFrom('connect_sessions')
        .selectAll()
        .where('id', '=', sessionId)
        .executeTakeFirst();
      if (!row || row.status !== 'started') return { done: true };
      if (row.expires_at <= clock.now().toISOString()) {
        await completeDevice(row, async () => {
          throw new VaultError('connect_session_expired');
        });
        return { done: true };
      }
      const opened = await openApp(row);
      const as = authorizationServerOf(opened, deps.allowHttp);
      const { deviceCode } = await unseal(opened, row);
      const response = await oauth.deviceCodeGrantRequest(
        as,
        { client_id: opened.client.clientId },
        clientAuthOf(opened.provider, opened.client),
        deviceCode ?? '',
        requestOptions(deps, opened),
      );
      const raw = await readTokenResponse(response.clone());
      const error =
        typeof raw.body === 'object' && raw.body ? (raw.body as { error?: unknown }).error : undefined;
      if (error === 'authorization_pending') return { done: false };
      if (error === 'slow_down') return { done: false, slowDown: true };
      await completeDevice(row, async () => {
        if (error === 'access_denied') throw new VaultError('connect_denied');
        if (error === 'expired_token') throw new VaultError('connect_session_expired');
        return tokensFrom(opened, response);
      });
      return { done: true };
    },
  });

  /** The end of a device flow, audited like a browser callback. */
  const completeDevice = (row: ConnectSessionRow, tokens: () => Promise<TokenSet>) =>
    auditedUse(audit, completeSpec(row), async (record) => {
      if (!(await connectSessionRepo.claim(db, row.id, 'started', 'exchanging', clock.now().toISOString()))) {
        throw new VaultError('connect_session_used');
      }
      try {
        const opened = await openApp(row);
        const credential = await store(row, opened, await tokens());
        await record({ details: { ...sessionFacts(row), credential_id: credential.id, flow: 'device' } });
      } catch (error) {
        await fail(row, error);
        throw error;
      }
    }).catch(() => undefined);

  const completeSpec = (row: ConnectSessionRow | undefined) => ({
    ctx: systemContext,
    namespace: row?.namespace ?? 'default',
    action: 'connect.complete' as const,
    target: { type: 'connect_session', id: row ? nameOf(row) : null },
    details: row ? sessionFacts(row) : {},
  });

  /** One client-credentials token request (RFC 6749 §4.4) for the app itself. */
  const clientCredentialsToken = async (opened: OpenedOAuthApp, scopes: readonly string[]) => {
    const as = authorizationServerOf(opened, deps.allowHttp);
    const parameters: Record<string, string> = {};
    if (scopes.length > 0) parameters.scope = scopes.join(opened.provider.scopes.separator);
    if (opened.app.settings.resource) parameters.resource = opened.app.settings.resource;
    const response = await oauth
      .clientCredentialsGrantRequest(
        as,
        { client_id: opened.client.clientId },
        clientAuthOf(opened.provider, opened.client),
        parameters,
        requestOptions(deps, opened),
      )
      .catch((error: unknown) => {
        throw new VaultError('connect_provider_error', 'The provider’s token endpoint did not answer.', {
          cause: error,
        });
      });
    return tokensFrom(opened, response);
  };

  const startDevice = async (opened: OpenedOAuthApp, row: ConnectSessionRow, scopes: string[]) => {
    const as = authorizationServerOf(opened, deps.allowHttp);
    if (!as.device_authorization_endpoint) throw new VaultError('connect_device_unsupported');
    const parameters: Record<string, string> = {};
    if (scopes.length > 0) parameters.scope = scopes.join(opened.provider.scopes.separator);
    if (opened.app.settings.resource) parameters.resource = opened.app.settings.resource;
    let started: oauth.DeviceAuthorizationResponse;
    try {
      started = await oauth.processDeviceAuthorizationResponse(
        as,
        { client_id: opened.client.clientId },
        await oauth.deviceAuthorizationRequest(
          as,
          { client_id: opened.client.clientId },
          clientAuthOf(opened.provider, opened.client),
          parameters,
          requestOptions(deps, opened),
        ),
      );
    } catch (error) {
      throw new VaultError('connect_provider_error', 'The provider refused to start the device flow.', {
        cause: error,
      });
    }
    const device: DeviceInfo = {
      userCode: started.user_code,
      verificationUri: started.verification_uri,
      ...(started.verification_uri_complete
        ? { verificationUriComplete: started.verification_uri_complete }
        : {}),
      interval: started.interval ?? 5,
    };
    const expiresAt = new Date(
      Math.min(Date.parse(row.expires_at), clock.now().getTime() + started.expires_in * 1000),
    ).toISOString();
    return { device, deviceCode: started.device_code, expiresAt };
  };

  const create = (
    namespace: string,
    input: StartConnectInput,
    ctx: AuditContext,
    options: { reuse?: boolean } = {},
  ): Promise<ConnectLink & { fetched?: { opened: OpenedOAuthApp; token: TokenSet } }> =>
    auditedChange(
      { db, audit },
      {
        ctx,
        namespace,
        action: 'connect.create',
        target: { type: 'connect_session', id: null },
        details: { app_name: String(input.app).slice(0, 64), subject: String(input.user).slice(0, 200) },
        prepare: async () => {
          assertNamespace(namespace);
          const clientCredentials = input.flow === 'client_credentials';
          if (clientCredentials) input = { ...input, user: input.user || '' };
          else if (typeof input.user !== 'string' || input.user.length === 0 || input.user.length > 256) {
            throw new VaultError('invalid_request', 'The end user (`--user`) is 1 to 256 characters.');
          }
          const opened = await deps.apps.open(namespace, input.app);
          const agent = await grantTargets.findAgent(db, namespace, input.agent);
          if (!agent) throw new VaultError('agent_not_found', `No agent "${input.agent.slice(0, 64)}".`);
          const scopes = validateScopes(input.scopes ?? opened.app.scopes);
          const credentialName = input.credential ?? opened.app.name;
          assertCredentialName(credentialName);
          const flow = input.flow ?? 'browser';
          const now = clock.now();
          if (options.reuse && !clientCredentials) {
            const open = await connectSessionRepo.findOpen(
              db,
              { namespace, agentId: agent.id, subject: input.user, appId: opened.app.id, flow },
              now.toISOString(),
            );
            const link = open ? (await unseal(opened, open)).link : undefined;
            if (open && link) return { row: open, link, reused: true };
          }
          const token = randomBytes(32).toString('base64url');
          const row: ConnectSessionRow = {
            id: newId(),
            token_hash: hashOf(token),
            namespace,
            app_id: opened.app.id,
            agent_id: agent.id,
            subject: input.user,
            scopes: JSON.stringify(scopes),
            credential_name: credentialName,
            grant_ttl_seconds: input.grantTtl === undefined ? null : ttlSecondsOf(input.grantTtl),
            reveal: input.reveal ? 1 : 0,
            flow,
            status: 'created',
            state_hash: null,
            secrets: null,
            device: null,
            error_code: null,
            credential_id: null,
            created_by: `${ctx.actor.type}:${ctx.actor.id ?? '-'}`,
            created_at: now.toISOString(),
            updated_at: now.toISOString(),
            expires_at: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
          };
          const secrets: Partial<Record<SecretName, string>> = { link: token };
          if (flow === 'device') {
            const started = await startDevice(opened, row, scopes);
            row.device = JSON.stringify(started.device);
            row.status = 'started';
            row.expires_at = started.expiresAt;
            secrets.device_code = started.deviceCode;
          }
          if (clientCredentials) {
            // No person to wait for: the vault fetches the token now and stores it (item 4).
            row.status = 'exchanging';
            const fetched = await clientCredentialsToken(opened, scopes);
            return { row, link: token, reused: false, fetched: { opened, token: fetched } };
          }
          row.secrets = await seal(opened, row, secrets);
          return { row, link: token, reused: false };
        },
      },
      async (
        trx,
        record,
        prepared,
      ): Promise<ConnectLink & { fetched?: { opened: OpenedOAuthApp; token: TokenSet } }> => {
        const { row, link: token, reused } = prepared;
        if (!reused) await connectSessionRepo.insert(trx, row);
        if ('fetched' in prepared && prepared.fetched) {
          await record({
            target: { type: 'connect_session', id: row.id },
            details: { ...sessionFacts(row), reused },
          });
          return { id: row.id, url: '', expiresAt: row.expires_at, fetched: prepared.fetched };
        }
        await record({
          target: { type: 'connect_session', id: row.id },
          details: { ...sessionFacts(row), reused },
        });
        const device = row.device ? (JSON.parse(row.device) as DeviceInfo) : undefined;
        // The poll is in the store with the session: whichever process is up polls it, even after
        // this one stops (device-poller.ts).
        if (device && !reused) {
          await devicePollRepo.insert(trx, {
            sessionId: row.id,
            namespace,
            intervalSeconds: Math.max(1, device.interval),
            firstPollAt: new Date(clock.now().getTime() + Math.max(1, device.interval) * 1000).toISOString(),
          });
        }
        return {
          id: row.id,
          url: device ? (device.verificationUriComplete ?? device.verificationUri) : linkOf(token),
          expiresAt: row.expires_at,
          ...(device ? { device } : {}),
        };
      },
    );

  /** A connect session; a client-credentials one is completed at once (no person involved). */
  const start = async (
    namespace: string,
    input: StartConnectInput,
    ctx: AuditContext,
    options: { reuse?: boolean } = {},
  ): Promise<ConnectLink> => {
    const { fetched, ...link } = await create(namespace, input, ctx, options);
    if (!fetched) return link;
    const row = await connectSessionRepo.findById(db, namespace, link.id);
    if (!row) throw new VaultError('connect_session_not_found');
    const credential = await auditedUse(audit, { ...completeSpec(row), ctx }, async (record) => {
      try {
        const stored = await store(row, fetched.opened, fetched.token);
        await record({ details: { ...sessionFacts(row), credential_id: stored.id } });
        return stored;
      } catch (error) {
        await fail(row, error);
        throw error;
      }
    });
    return { ...link, url: '', expiresAt: credential.expiresAt ?? link.expiresAt };
  };

  return {
    start,

    /**
     * For an agent asking for a provider its user has not connected: a link to show the user, when an
     * OAuth app of that name exists and the operator allowed agents to connect through it
     * (`agent_connect`); undefined otherwise (the request is then refused as before).
     */
    async linkForAgent(request: {
      namespace: string;
      agentId: string;
      service: string;
      user: string;
      reveal: boolean;
      /** The flow the agent asked for (`?flow=`); absent: the app's preferred one. */
      flow?: AgentConnectFlow | undefined;
    }): Promise<ConnectLink | undefined> {
      const app = (await deps.apps.list(request.namespace)).find((a) => a.name === request.service);
      if (!app?.agentConnect) return undefined;
      const flow = request.flow ?? app.agentConnectFlows[0] ?? 'browser';
      if (!app.agentConnectFlows.includes(flow)) {
        throw new VaultError(
          'connect_flow_not_allowed',
          `Agents may connect "${app.name}" through ${app.agentConnectFlows.join(' or ')} only, not ${flow}.`,
        );
      }
      return start(
        request.namespace,
        { app: app.name, agent: request.agentId, user: request.user, reveal: request.reveal, flow },
        { actor: { type: 'agent', id: request.agentId } },
        { reuse: true },
      );
    },

    /** What the consent page shows; refusals (unknown, used, expired link) are audited. */
    page: (token: string, ctx: AuditContext): Promise<ConnectPageView> =>
      auditedUse(
        audit,
        {
          ctx,
          namespace: 'default',
          action: 'connect.authorize',
          target: { type: 'connect_session', id: null },
        },
        async () => {
          const row = usable(await connectSessionRepo.findByToken(db, token));
          const opened = await openApp(row);
          const agent = await db
            .selectFrom('agents')
            .select('name')
            .where('id', '=', row.agent_id)
            .executeTakeFirst();
          return {
            app: opened.app.name,
            provider: opened.provider.displayName,
            agent: agent?.name ?? row.agent_id,
            user: row.subject,
            scopes: JSON.parse(row.scopes) as string[],
            flow: row.flow as ConnectFlow,
            device: row.device ? (JSON.parse(row.device) as DeviceInfo) : null,
          };
        },
      ),

    /** The person continues: fresh state, PKCE verifier and nonce, sealed; the provider's URL. */
    begin: (token: string, ctx: AuditContext): Promise<string> => {
      const facts: AuditDetails = {};
      return auditedUse(
        audit,
        {
          ctx,
          namespace: 'default',
          action: 'connect.authorize',
          target: { type: 'connect_session', id: null },
          details: facts,
        },
        async (record) => {
          const row = usable(await connectSessionRepo.findByToken(db, token));
          Object.assign(facts, sessionFacts(row));
          if (row.flow !== 'browser') throw new VaultError('connect_session_used');
          const opened = await openApp(row);
          const scopes = JSON.parse(row.scopes) as string[];
          const secrets = newAuthorizationSecrets(opened, scopes);
          const url = await authorizationUrl(opened, {
            redirectUri: deps.apps.redirectUri,
            scopes,
            secrets,
            allowHttp: deps.allowHttp,
          });
          await connectSessionRepo.update(db, row.id, {
            status: 'started',
            state_hash: hashOf(secrets.state),
            secrets: await seal(opened, row, {
              link: token,
              verifier: secrets.verifier,
              ...(secrets.nonce ? { nonce: secrets.nonce } : {}),
            }),
            updated_at: clock.now().toISOString(),
          });
          await record({ target: { type: 'connect_session', id: row.id } });
          return url;
        },
      );
    },

    /** The provider's redirect back: every check, the code exchange, the credential and the grant. */
    callback: (query: Record<string, string | undefined>, ctx: AuditContext) => {
      const facts: AuditDetails = {};
      const spec = { ...completeSpec(undefined), ctx, details: facts };
      return auditedUse(audit, spec, async (record) => {
        const state = query.state;
        const row = state ? await connectSessionRepo.findByState(db, state) : undefined;
        if (!row) throw new VaultError('connect_state_invalid');
        Object.assign(facts, sessionFacts(row));
        spec.namespace = row.namespace;
        spec.target = { type: 'connect_session', id: row.id };
        if (row.status !== 'started')
          throw new VaultError(row.status === 'created' ? 'connect_state_invalid' : 'connect_session_used');
        if (
          !(await connectSessionRepo.claim(db, row.id, 'started', 'exchanging', clock.now().toISOString()))
        ) {
          throw new VaultError('connect_session_used');
        }
        try {
          if (row.expires_at <= clock.now().toISOString()) throw new VaultError('connect_session_expired');
          const opened = await openApp(row);
          const credential = await exchange(row, opened, query);
          await record({ details: { ...sessionFacts(row), credential_id: credential.id, flow: 'browser' } });
          return { credential: credential.name, user: row.subject, app: opened.app.name };
        } catch (error) {
          await fail(row, error);
          throw error;
        }
      });
    },

    async show(namespace: string, id: string) {
      const row = await connectSessionRepo.findById(db, namespace, id);
      if (!row) throw new VaultError('connect_session_not_found');
      return {
        id: row.id,
        status: row.status,
        errorCode: row.error_code,
        credentialId: row.credential_id,
        expiresAt: row.expires_at,
      };
    },

    /** Starts polling the device flows waiting in the store (this process's and any other's). */
    startPolling: () => poller.start(),
    /** Stops polling here; open device flows stay in the store, resumed by the next process. */
    stop: () => poller.stop(),
  };

  async function exchange(
    row: ConnectSessionRow,
    opened: OpenedOAuthApp,
    query: Record<string, string | undefined>,
  ) {
    if (query.error) {
      throw new VaultError(
        query.error === 'access_denied' ? 'connect_denied' : 'connect_provider_error',
        `The provider answered ${safeCode(query.error)}; nothing was stored.`,
      );
    }
    const as = authorizationServerOf(opened, deps.allowHttp);
    const client = { client_id: opened.client.clientId };
    const params = new URLSearchParams(
      Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    // RFC 9207: checked where the app knows its issuer (oidc); a catalog provider's `iss` cannot be
    // compared to anything, so it is not passed on.
    if (opened.client.issuer) {
      if (params.has('iss') && params.get('iss') !== opened.client.issuer) {
        throw new VaultError('connect_issuer_mismatch');
      }
    } else params.delete('iss');
    const { verifier, nonce } = await unseal(opened, row);
    let callbackParams: URLSearchParams;
    try {
      callbackParams = oauth.validateAuthResponse(as, client, params, query.state);
    } catch (error) {
      throw new VaultError(
        'connect_provider_error',
        'The provider’s answer is not a valid authorization response.',
        {
          cause: error,
        },
      );
    }
    const response = await oauth
      .authorizationCodeGrantRequest(
        as,
        client,
        clientAuthOf(opened.provider, opened.client),
        callbackParams,
        deps.apps.redirectUri,
        verifier ?? oauth.nopkce,
        requestOptions(deps, opened),
      )
      .catch((error: unknown) => {
        throw new VaultError('connect_provider_error', 'The provider’s token endpoint did not answer.', {
          cause: error,
        });
      });
    const scopes = JSON.parse(row.scopes) as string[];
    if (response.ok && usesOidc(opened, scopes) && nonce) {
      // The ID token: issuer, audience, expiry and the nonce this session sent.
      await oauth
        .processAuthorizationCodeResponse(as, client, response.clone(), {
          expectedNonce: nonce,
          requireIdToken: true,
        })
        .catch((error: unknown) => {
          throw new VaultError('connect_provider_error', 'The provider’s ID token did not check out.', {
            cause: error,
          });
        });
    }
    return store(row, opened, await tokensFrom(opened, response));
  }
};

/** The facts every connect event carries (never a token, a code, a verifier or a nonce). */
const sessionFacts = (row: ConnectSessionRow) => ({
  session_id: row.id,
  app_id: row.app_id,
  agent_id: row.agent_id,
  subject: row.subject,
  credential_name: row.credential_name,
  scopes: JSON.parse(row.scopes) as string[],
  flow: row.flow,
});

/** A provider's error code as it may appear in a message: a short token, nothing else. */
const safeCode = (code: string) => (/^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : 'an error');

const ttlSecondsOf = (ttl: string): number => {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  if (!match) throw new VaultError('invalid_request', 'The grant TTL is like 1h, 7d or 30d.');
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
};

export type ConnectService = ReturnType<typeof createConnectService>;
