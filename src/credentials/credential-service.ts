import type { AllowedDecision } from '../access/access-types.js';
import { type AuditContext, auditedChange, type AuditSpec, systemContext } from '../audit/audit-context.js';
import type { AuditAction, AuditRecorder } from '../audit/audit-types.js';
import { decryptField, encryptField } from '../crypto/envelope.js';
import { refKind, type WrappedKey } from '../crypto/key-provider.js';
import { VaultError } from '../errors/vault-error.js';
import { grantRepo } from '../grants/grant-repo.js';
import type { DataKeyService } from '../keys/data-key-service.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Store } from '../store/database.js';
import { accessScope, type GenerationCache, type GenerationView } from '../store/generation-cache.js';
import { isUniqueViolation } from '../store/store-errors.js';
import { selectBySubject } from './subject-selection.js';
import { type Credential, credentialRepo, type Db, prepareCurrentSecret, toRow } from './credential-repo.js';
import {
  assertCredentialName,
  assertNamespace,
  type CredentialStatus,
  type CredentialType,
  type Injection,
  type InjectionInput,
  parseCredentialType,
  type SecretFields,
  validateAllowedHosts,
  validateBaseUrl,
  validateScopes,
  validateSecret,
} from './credential-types.js';
import {
  injectionsForCreate,
  injectionsForUpdate,
  injectionsOf,
  parseStoredInjections,
} from './injection-list.js';

export interface CreateCredentialInput {
  name: string;
  type: string;
  secret: unknown;
  description?: string | undefined;
  scopes?: string[] | undefined;
  allowedHosts?: string[] | undefined;
  /** The API base URL the HTTP proxy forwards to; null or absent: not proxied. */
  baseUrl?: string | null | undefined;
  injection?: InjectionInput | undefined;
  /** Several injections (instead of `injection`), applied in order by the HTTP proxy. */
  injections?: InjectionInput[] | undefined;
  expiresAt?: string | null | undefined;
  subject?: string | null | undefined;
  /** The OAuth app the tokens come from (set by connect, not by the admin API). */
  oauthAppId?: string | null | undefined;
}

export interface UpdateCredentialInput {
  secret?: unknown;
  description?: string | undefined;
  scopes?: string[] | undefined;
  allowedHosts?: string[] | undefined;
  /** null clears it. */
  baseUrl?: string | null | undefined;
  injection?: InjectionInput | undefined;
  /** Replaces every injection (instead of `injection`, which replaces them with one). */
  injections?: InjectionInput[] | undefined;
  expiresAt?: string | null | undefined;
  subject?: string | null | undefined;
  status?: CredentialStatus | undefined;
}

export interface CredentialServiceDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  /** Caches the retrieval path's read of a credential until that credential changes. */
  access: GenerationCache;
  /** The decrypted platform secrets kept in memory (`secretCacheDefaults` when absent). */
  secretCache?: SecretCacheLimits | undefined;
  dataKeys: Pick<DataKeyService, 'prepare' | 'insert' | 'open' | 'openWrapped' | 'remove'>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

/**
 * How many decrypted platform secrets the retrieval path keeps in memory, and for how long. The
 * access cache drops one as soon as its credential changes (generation-cache.ts); these limits only
 * bound how much plaintext sits in the heap and for how long after its last load (a core dump, a
 * heap snapshot). `maxEntries: 0` keeps none: every retrieval decrypts.
 */
export interface SecretCacheLimits {
  maxEntries: number;
  maxAgeMs: number;
}

/** Also the defaults of `--secret-cache-max-entries` and `--secret-cache-max-age-ms`. */
export const secretCacheDefaults: SecretCacheLimits = { maxEntries: 10_000, maxAgeMs: 300_000 };

const maxPageSize = 500;

const parseExpiry = (value: string | null | undefined): string | null => {
  if (value === undefined || value === null) return null;
  const time = Date.parse(value);
  if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    throw new VaultError(
      'invalid_request',
      `expires_at must be an ISO-8601 date-time such as 2027-01-31T00:00:00Z.`,
    );
  }
  return new Date(time).toISOString();
};

const encryptAll = (
  dek: Buffer,
  dekId: string,
  c: Pick<Credential, 'namespace' | 'id'>,
  version: number,
  secret: SecretFields,
) =>
  Object.fromEntries(
    Object.entries(secret).map(([field, value]) => [
      field,
      encryptField(dek, dekId, { namespace: c.namespace, credentialId: c.id, version, field }, value),
    ]),
  );

const decryptAll = (
  dek: Buffer,
  dekId: string,
  c: Pick<Credential, 'namespace' | 'id'>,
  version: number,
  ciphertexts: Record<string, string>,
): SecretFields => {
  const secret: SecretFields = {};
  for (const [field, ciphertext] of Object.entries(ciphertexts)) {
    secret[field] = decryptField(
      dek,
      dekId,
      { namespace: c.namespace, credentialId: c.id, version, field },
      ciphertext,
    ).toString('utf8');
  }
  return secret;
};

export const createCredentialService = ({
  store,
  access,
  dataKeys,
  clock,
  audit,
  secretCache = secretCacheDefaults,
}: CredentialServiceDeps) => {
  const { db } = store;
  const currentSecretQuery = prepareCurrentSecret(store);
  /** A credential's current fields: its data key unwrapped, then each field decrypted. */
  const openCurrent = async (
    c: Pick<Credential, 'namespace' | 'id'>,
    s: { key: WrappedKey; dataKeyId: string; version: number; ciphertexts: Record<string, string> },
  ): Promise<SecretFields> =>
    decryptAll(await dataKeys.openWrapped(s.key), s.dataKeyId, c, s.version, s.ciphertexts);
  type CurrentKey = { namespace: string; id: string };
  const currentKey = ({ namespace, id }: CurrentKey) => `${namespace}\u0000${id}`;
  /** What the retrieval path needs of a credential, read and parsed once until the credential changes. */
  const currentRow = access.lookup({
    key: currentKey,
    load: async (params: CurrentKey) => {
      const row = await currentSecretQuery.first(params);
      if (!row) return undefined;
      const injections = Object.freeze(parseStoredInjections(row.injection));
      return Object.freeze({
        credential: Object.freeze({
          id: row.id,
          type: row.type as CredentialType,
          injection: injections[0] as Injection,
          injections,
          allowedHosts: Object.freeze(JSON.parse(row.allowed_hosts) as string[]),
          baseUrl: row.base_url,
          subject: row.subject,
        }),
        dataKeyId: row.data_key_id,
        version: Number(row.current_version),
        ciphertexts: JSON.parse(row.ciphertexts) as Record<string, string>,
        key: { ref: row.kek_ref, wrapped: row.wrapped_key },
      });
    },
    maxEntries: 10_000,
    // Its row, its versions and its data key: a change to another credential leaves it.
    scopes: ({ id }) => [accessScope.credential(id)],
    name: 'credential',
  });
  /**
   * The decrypted fields, under a platform key only: the KEK that opens every data key is in this
   * process's memory anyway, and a native decipher per request costs more in garbage collection than
   * in decryption (docs/benchmarks.md). A webhook data key is unwrapped on every read, so an outage
   * or a key the operator's KMS no longer opens is refused at once (fail closed). Same scope as the
   * row it was decrypted from; bounded and aged by `secretCache`.
   */
  const currentPlain =
    secretCache.maxEntries > 0
      ? access.lookup({
          key: currentKey,
          load: async ({ view, ...params }: CurrentKey & { view: GenerationView }) => {
            const current = await currentRow(view, params);
            if (!current || refKind(current.key.ref) !== 'platform') return undefined;
            return Object.freeze({
              credential: current.credential,
              version: current.version,
              secret: Object.freeze(await openCurrent(params, current)),
            });
          },
          maxEntries: secretCache.maxEntries,
          maxAge: { ms: secretCache.maxAgeMs, now: () => clock.now().getTime() },
          scopes: ({ id }) => [accessScope.credential(id)],
          name: 'secret',
        })
      : undefined;

  /** Every change of a credential is filed against it by the name it was asked for. */
  const spec = (ctx: AuditContext, namespace: string, action: AuditAction, name: string): AuditSpec => ({
    ctx,
    namespace,
    action,
    target: { type: 'credential', id: name.slice(0, 200) },
    // Its id joins it once found (every allow records `credential_id`); see audit-subjects.ts.
    details: { credential_name: name.slice(0, 200) },
  });

  /**
   * The credential an admin means by a name and, for per-user credentials, a user (`--user`): exactly
   * that user's; without one the shared one or the only one (subject-selection.ts).
   */
  const find = async (namespace: string, name: string, trx: Db = db, user?: string) => {
    assertNamespace(namespace);
    const selected = selectBySubject(await credentialRepo.findAllByName(trx, namespace, name), user, {
      fallbackToShared: false,
    });
    if (selected.found) return selected.found;
    if (selected.ambiguous) {
      throw new VaultError(
        'end_user_required',
        `Several users hold a credential named "${name.slice(0, 64)}": name one (\`--user\`, \`?user=\`).`,
      );
    }
    throw new VaultError(
      'credential_not_found',
      user === undefined
        ? `No credential named "${name.slice(0, 64)}" in namespace "${namespace}".`
        : `No credential named "${name.slice(0, 64)}" for user "${user.slice(0, 64)}" in namespace "${namespace}".`,
    );
  };

  const strip = ({
    ciphertexts: _ciphertexts,
    ...credential
  }: Credential & { ciphertexts: string }): Credential => credential;

  return {
    create: (namespace: string, input: CreateCredentialInput, ctx: AuditContext = systemContext) => {
      const nameTaken = () =>
        new VaultError(
          'credential_exists',
          input.subject
            ? `A credential named "${input.name}" already exists for user "${input.subject}" in namespace "${namespace}".`
            : `A credential named "${input.name}" already exists in namespace "${namespace}".`,
        );
      return auditedChange(
        { db, audit },
        {
          ...spec(ctx, namespace, 'credential.create', String(input.name)),
          // Validated, and the data key made (a network call in webhook mode), before the transaction.
          prepare: async () => {
            assertNamespace(namespace);
            assertCredentialName(input.name);
            const type = parseCredentialType(input.type);
            const secret = validateSecret(type, input.secret);
            const fields = Object.keys(secret);
            const injections = injectionsForCreate(input, type, fields);
            const scopes = validateScopes(input.scopes ?? []);
            const allowedHosts = validateAllowedHosts(input.allowedHosts ?? []);
            const baseUrl = validateBaseUrl(input.baseUrl ?? null, allowedHosts);
            const expiresAt = parseExpiry(input.expiresAt);
            // One per (name, subject): several users may each hold a credential of this name.
            const sameName = await credentialRepo.findAllByName(db, namespace, input.name);
            if (sameName.some((c) => c.subject === (input.subject ?? null))) throw nameTaken();

            const id = newId();
            const { dek, row: dataKeyRow } = await dataKeys.prepare(namespace, id);
            const now = clock.now().toISOString();
            const credential: Credential = {
              id,
              namespace,
              name: input.name,
              type,
              description: input.description ?? '',
              scopes,
              allowedHosts,
              baseUrl,
              injection: injections[0] as Injection,
              injections,
              status: 'active',
              expiresAt,
              subject: input.subject ?? null,
              oauthAppId: input.oauthAppId ?? null,
              dataKeyId: dataKeyRow.id,
              version: 1,
              secretFields: [...fields].sort(),
              createdAt: now,
              updatedAt: now,
            };
            return {
              credential,
              dataKeyRow,
              ciphertexts: encryptAll(dek, dataKeyRow.id, credential, 1, secret),
            };
          },
        },
        async (trx, record, { credential, dataKeyRow, ciphertexts }): Promise<Credential> => {
          try {
            await dataKeys.insert(trx, dataKeyRow);
            await credentialRepo.insert(trx, toRow(credential));
          } catch (error) {
            // Two replicas creating the same name at once: the unique constraint decides.
            if (isUniqueViolation(error)) throw nameTaken();
            throw error;
          }
          await credentialRepo.insertVersion(trx, credential.id, 1, ciphertexts, credential.createdAt);
          await record({ details: { credential_id: credential.id, type: credential.type, version: 1 } });
          return credential;
        },
      );
    },

    async list(namespace: string, options: { limit?: number | undefined; after?: string | undefined } = {}) {
      assertNamespace(namespace);
      const limit = Math.min(Math.max(options.limit ?? 100, 1), maxPageSize);
      const items = await credentialRepo.list(db, namespace, { limit: limit + 1, after: options.after });
      const page = items.slice(0, limit);
      return { items: page, nextCursor: items.length > limit ? (page.at(-1)?.name ?? null) : null };
    },

    get: async (namespace: string, name: string, user?: string): Promise<Credential> =>
      strip(await find(namespace, name, db, user)),

    update: (
      namespace: string,
      name: string,
      input: UpdateCredentialInput,
      ctx: AuditContext = systemContext,
      user?: string,
    ) =>
      auditedChange(
        { db, audit },
        {
          ...spec(ctx, namespace, 'credential.update', name),
          prepare: async () => {
            const current = strip(await find(namespace, name, db, user));
            const secret =
              input.secret === undefined ? undefined : validateSecret(current.type, input.secret);
            const fields = secret ? Object.keys(secret) : current.secretFields;
            const injections = injectionsForUpdate(
              input,
              injectionsOf(current),
              current.type,
              fields,
              secret !== undefined,
            );
            const allowedHosts =
              input.allowedHosts === undefined
                ? current.allowedHosts
                : validateAllowedHosts(input.allowedHosts);
            // Checked against the hosts it will have, whichever of the two changed (an http base URL
            // needs its host listed).
            const baseUrl = validateBaseUrl(
              input.baseUrl === undefined ? current.baseUrl : input.baseUrl,
              allowedHosts,
            );
            const next: Credential = {
              ...current,
              description: input.description ?? current.description,
              scopes: input.scopes === undefined ? current.scopes : validateScopes(input.scopes),
              allowedHosts,
              baseUrl,
              injection: injections[0] as Injection,
              injections,
              expiresAt: input.expiresAt === undefined ? current.expiresAt : parseExpiry(input.expiresAt),
              subject: input.subject === undefined ? current.subject : input.subject,
              status: input.status ?? current.status,
              secretFields: [...fields].sort(),
              updatedAt: clock.now().toISOString(),
            };
            // The data key is opened before the transaction: in webhook mode that is a network call.
            const dek = secret ? await dataKeys.open(current.dataKeyId) : undefined;
            return { current, next, secret, dek };
          },
        },
        async (trx, record, { current, next, secret, dek }): Promise<Credential> => {
          if (secret && dek) {
            const bumped = await trx
              .updateTable('credentials')
              .set((eb) => ({ current_version: eb('current_version', '+', 1) }))
              .where('id', '=', current.id)
              .returning('current_version')
              .executeTakeFirstOrThrow();
            next.version = bumped.current_version;
            await credentialRepo.insertVersion(
              trx,
              current.id,
              next.version,
              encryptAll(dek, current.dataKeyId, current, next.version, secret),
              next.updatedAt,
            );
          }
          const { id: _id, current_version: _version, created_at: _created, ...row } = toRow(next);
          await credentialRepo.update(trx, current.id, row);
          await record({
            details: {
              credential_id: current.id,
              version: next.version,
              secret_changed: secret !== undefined,
              fields: Object.keys(input).filter(
                (key) => (input as Record<string, unknown>)[key] !== undefined,
              ),
            },
          });
          return next;
        },
      ),

    remove: (namespace: string, name: string, ctx: AuditContext = systemContext, user?: string) =>
      auditedChange({ db, audit }, spec(ctx, namespace, 'credential.delete', name), async (trx, record) => {
        const current = await find(namespace, name, trx, user);
        // A grant must not outlive its credential; the grants module removes its own rows.
        const grantsDeleted = await grantRepo.removeForCredential(trx, current.id);
        await credentialRepo.removeAllVersions(trx, current.id);
        await credentialRepo.remove(trx, current.id);
        await dataKeys.remove(trx, current.dataKeyId);
        await record({ details: { credential_id: current.id, grants_deleted: grantsDeleted } });
      }),

    async versions(namespace: string, name: string, user?: string) {
      const current = await find(namespace, name, db, user);
      const rows = await credentialRepo.listVersions(db, current.id);
      return rows.map((row) => ({
        version: row.version,
        createdAt: row.created_at,
        current: row.version === current.version,
      }));
    },

    /** Deletes all but the newest `keep` secret versions; returns how many went. */
    prune: (namespace: string, name: string, keep = 1, ctx: AuditContext = systemContext, user?: string) =>
      auditedChange(
        { db, audit },
        spec(ctx, namespace, 'credential.prune', name),
        async (trx, record): Promise<number> => {
          const current = await find(namespace, name, trx, user);
          if (!Number.isInteger(keep) || keep < 1)
            throw new VaultError('invalid_request', 'keep must be a whole number of at least 1.');
          const result = await credentialRepo.removeVersionsBelow(
            trx,
            current.id,
            current.version - keep + 1,
          );
          const pruned = Number(result.numDeletedRows);
          await record({ details: { credential_id: current.id, keep, pruned } });
          return pruned;
        },
      ),
    /** The decrypted secret. Only the agent retrieval path and the proxies may call this. */
    async readSecret(namespace: string, name: string, options: { version?: number; user?: string } = {}) {
      const found = await find(namespace, name, db, options.user);
      const credential = strip(found);
      const version = options.version ?? credential.version;
      const ciphertexts =
        version === credential.version
          ? (JSON.parse(found.ciphertexts) as Record<string, string>)
          : await credentialRepo.findVersion(db, credential.id, version);
      if (!ciphertexts) {
        throw new VaultError(
          'credential_version_not_found',
          `Credential "${name}" has no version ${version}.`,
        );
      }
      const dek = await dataKeys.open(credential.dataKeyId);
      const secret = decryptAll(
        dek,
        credential.dataKeyId,
        { namespace, id: credential.id },
        version,
        ciphertexts,
      );
      return { credential, version, secret };
    },

    /**
     * For the OAuth refresher only: a credential's current secret by id, and `write`, which stores
     * the next version inside the caller's transaction (the refresher's, which also checks its lease
     * and records the refresh), so a rotated refresh token and its access token land together or not
     * at all. The data key is opened here, before any transaction (a network call in webhook mode).
     * Undefined when the credential is gone.
     */
    async openForRefresh(namespace: string, id: string) {
      const found = await credentialRepo.findById(db, id);
      if (!found || found.namespace !== namespace) return undefined;
      const credential = strip(found);
      const dek = await dataKeys.open(credential.dataKeyId);
      const secret = decryptAll(
        dek,
        credential.dataKeyId,
        credential,
        credential.version,
        JSON.parse(found.ciphertexts) as Record<string, string>,
      );
      const write = async (trx: Db, next: SecretFields, now: string): Promise<number> => {
        const bumped = await trx
          .updateTable('credentials')
          .set((eb) => ({ current_version: eb('current_version', '+', 1) }))
          .where('id', '=', id)
          .returning('current_version')
          .executeTakeFirstOrThrow();
        const version = bumped.current_version;
        await credentialRepo.insertVersion(
          trx,
          id,
          version,
          encryptAll(dek, credential.dataKeyId, credential, version, next),
          now,
        );
        // The versions before the previous one hold refresh tokens the provider has (or will have)
        // retired: keeping their ciphertexts forever keeps nothing useful.
        await credentialRepo.removeVersionsBelow(trx, id, version - 1);
        return version;
      };
      return { credential, version: credential.version, secret, write };
    },

    /**
     * The current secret of the credential a decision allowed, for the agent request path: one
     * prepared read (credential, current version and data key together), then the data key unwrapped
     * and the fields decrypted: under a platform key once until the credential changes (within the
     * `secretCache` limits; on every read when it is off), under a webhook one on every read. It takes
     * the decision itself (only `decide()` makes an AllowedDecision), so a use without a decision does
     * not compile. `credential_not_found` when the credential is gone.
     */
    async readCurrentSecret(allowed: AllowedDecision, view?: GenerationView) {
      const { namespace, credentialId } = allowed;
      const at = view ?? (await access.view());
      const params = { namespace, id: credentialId };
      const plain = await currentPlain?.(at, { ...params, view: at });
      if (plain) return plain;
      const current = await currentRow(at, params);
      if (!current) throw new VaultError('credential_not_found');
      const { credential, version } = current;
      return { credential, version, secret: await openCurrent(params, current) };
    },
  };
};

export type CredentialService = ReturnType<typeof createCredentialService>;
