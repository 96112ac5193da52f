import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import type { SettingName } from '../../src/config/config-schema.js';
import type { CredentialService } from '../../src/credentials/credential-service.js';
import type { ErrorBody } from '../../src/http/error-handler.js';
import type { KeyJobView, KeysVerifyResult, KeyStatusView } from '../../src/http/schemas/response-types.js';
import { createWebhookKmsServer, type WebhookKmsServer } from '../../src/crypto/webhook-kms-server.js';
import type { Database } from '../../src/store/schema.js';
import type { TestVault } from '../helpers/vault.js';

export { waitForJob } from '../helpers/jobs.js';

/**
 * Shared pieces of the key-management suites: a real reference key webhook on loopback, a poller for
 * the re-wrap job, and the probes that look at what the store and the data dir hold.
 */

export const kmsKeyId = 'kms-test';

/** The audit chain key is a data key too (src/audit/audit-keys.ts): one row more than the credentials. */
export const auditKeyRows = 1;

export interface TestKms {
  /** `http://127.0.0.1:<port>`; the same across stop() and restart(). */
  readonly url: string;
  readonly key: Buffer;
  readonly secret: string;
  /** Stops answering (connections are closed); the vault sees a refused connection. */
  stop(): Promise<void>;
  /** Serves again on the same port with the same key and secret. */
  restart(): Promise<void>;
}

/** A real `createWebhookKmsServer` on 127.0.0.1 with a fresh random key and HMAC secret. */
export const startKms = async (): Promise<TestKms> => {
  const key = randomBytes(32);
  const secret = randomBytes(32).toString('hex');
  const make = (port: number) =>
    createWebhookKmsServer({ keys: [{ id: kmsKeyId, key }], activeKeyId: kmsKeyId, secret, port });
  let server: WebhookKmsServer | undefined = make(0);
  const { url } = await server.start();
  const port = Number(new URL(url).port);
  return {
    url,
    key,
    secret,
    async stop() {
      const running = server;
      server = undefined;
      await running?.stop();
    },
    async restart() {
      if (server) return;
      const next = make(port);
      // The port was ours a moment ago; if the OS has not released it yet, try again briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          await next.start();
          server = next;
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw error;
          await sleep(50);
        }
      }
    },
  };
};

/** Vault settings for webhook mode against `kms`. */
export const webhookSettings = (
  kms: TestKms,
  mode: 'webhook' | 'platform' = 'webhook',
): Partial<Record<SettingName, string>> => ({
  vaultMode: mode,
  kmsWebhookUrl: kms.url,
  kmsWebhookSecret: kms.secret,
});

/** The key routes' response bodies, under the names these suites use. */
export type JobView = KeyJobView;
export type StatusView = KeyStatusView;
export type VerifyView = KeysVerifyResult;

/** `GET /v1/admin/keys/status`, asserting it answers. */
export const keyStatus = async (vault: TestVault): Promise<StatusView> => {
  const response = await vault.request('GET', '/v1/admin/keys/status');
  expect(response.status).toBe(200);
  return response.body as StatusView;
};

/** `POST /v1/admin/keys/verify`, asserting it answers. */
export const keyVerify = async (vault: TestVault): Promise<VerifyView> => {
  const response = await vault.request('POST', '/v1/admin/keys/verify');
  expect(response.status).toBe(200);
  return response.body as VerifyView;
};

export const errorOf = (body: unknown) => (body as ErrorBody).error;

/** Data keys per `kek_ref`, straight from the table. */
export const refCounts = async (db: Kysely<Database>): Promise<Record<string, number>> => {
  const rows = await db
    .selectFrom('data_keys')
    .select(['kek_ref', (eb) => eb.fn.countAll<number | string>().as('n')])
    .groupBy('kek_ref')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.kek_ref, Number(r.n)]));
};

export const countRows = async (db: Kysely<Database>, table: keyof Database): Promise<number> =>
  Number(
    (
      await db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

export const dataKeyRefOf = async (db: Kysely<Database>, credentialId: string): Promise<string> =>
  (
    await db
      .selectFrom('data_keys')
      .select('kek_ref')
      .where('credential_id', '=', credentialId)
      .executeTakeFirstOrThrow()
  ).kek_ref;

/** Every encoding in which a 32-byte key could plausibly have been written down. */
export const encodingsOf = (key: Buffer): { name: string; bytes: Buffer }[] => [
  { name: 'raw bytes', bytes: key },
  { name: 'base64', bytes: Buffer.from(key.toString('base64')) },
  { name: 'base64 without padding', bytes: Buffer.from(key.toString('base64').replace(/=+$/, '')) },
  { name: 'base64url', bytes: Buffer.from(key.toString('base64url')) },
  { name: 'hex', bytes: Buffer.from(key.toString('hex')) },
  { name: 'HEX', bytes: Buffer.from(key.toString('hex').toUpperCase()) },
];

/** Every regular file under `dir`, recursively (the SQLite file, its WAL and SHM, key and token files). */
export const filesUnder = async (dir: string): Promise<{ path: string; bytes: Buffer }[]> => {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push({ path, bytes: await readFile(path) });
  }
  return out;
};

/** `[]` when no file under `dir` holds `key` in any encoding; otherwise where it was found. */
export const whereKeyAppears = async (dir: string, key: Buffer): Promise<string[]> => {
  const found: string[] = [];
  for (const file of await filesUnder(dir)) {
    for (const { name, bytes } of encodingsOf(key)) {
      if (file.bytes.includes(bytes)) found.push(`${file.path} (${name})`);
    }
  }
  return found;
};

/** Every row of every table as one JSON string, for searching what the database holds. */
export const dumpDatabase = async (db: Kysely<Database>): Promise<string> => {
  const tables: (keyof Database)[] = [
    'vault_state',
    'kek_versions',
    'data_keys',
    'credentials',
    'credential_versions',
    'admin_tokens',
  ];
  const dump: Record<string, unknown> = {};
  for (const table of tables) dump[table] = await db.selectFrom(table).selectAll().execute();
  return JSON.stringify(dump);
};

export const expectKeyNowhereIn = (text: string, key: Buffer, where: string): void => {
  for (const { name, bytes } of encodingsOf(key)) {
    expect(text.includes(bytes.toString('latin1')), `the key (${name}) appears in ${where}`).toBe(false);
  }
};

/** Creates `count` api_key credentials named `<prefix>-<i>`; returns name → secret. */
export const seedCredentials = async (
  credentials: CredentialService,
  count: number,
  prefix = 'cred',
): Promise<Map<string, string>> => {
  const secrets = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const secret = `sk-${prefix}-${i}-${randomBytes(6).toString('hex')}`;
    await credentials.create('default', { name, type: 'api_key', secret: { api_key: secret } });
    secrets.set(name, secret);
  }
  return secrets;
};

/** Reads every secret through the credential service and compares it with what was stored. */
export const expectAllReadable = async (
  credentials: CredentialService,
  secrets: Map<string, string>,
): Promise<void> => {
  const read = await Promise.all(
    [...secrets.keys()].map(async (name) => [name, (await credentials.readSecret('default', name)).secret]),
  );
  for (const [name, secret] of read) {
    expect(secret, `secret of ${name as string}`).toEqual({ api_key: secrets.get(name as string) });
  }
};
