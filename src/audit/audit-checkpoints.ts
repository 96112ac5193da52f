import { open } from 'node:fs/promises';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import type { AuditChainKey } from './audit-keys.js';

/**
 * Signed checkpoints of the audit log (docs/audit.md, "Checkpoints"): the head (seq and hash) at a
 * time, signed with an Ed25519 key, stored in `audit_checkpoints` and appended to a file an operator
 * ships elsewhere. The keyed chain stops a database writer from rewriting events; it cannot stop one
 * from deleting the newest events and resetting the head. A checkpoint kept outside the vault can:
 * the log must still hold every checkpointed `(seq, hash)`.
 *
 * The signing key is derived from the audit chain key with HKDF under a label of its own rather than
 * stored as a second wrapped data key: it is then exactly as protected as the chain key (wrapped by
 * the key provider, moved by every re-wrap) with no second row to lose or to keep in step, and the
 * label makes it unrelated to the link key. Only the public key ever leaves the process.
 */

export interface CheckpointKey {
  /** Short id of the public key (the first 16 hex of SHA-256 of its raw bytes). */
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface Checkpoint {
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  /** Ed25519 over `checkpointText`, base64url. */
  signature: string;
}

/** The PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const ed25519Pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

export const deriveCheckpointKey = (chainKey: Pick<AuditChainKey, 'hmacKey'>): CheckpointKey => {
  const seed = Buffer.from(
    hkdfSync('sha256', chainKey.hmacKey, Buffer.alloc(0), 'tokenvault audit checkpoint ed25519 v1', 32),
  );
  const privateKey = createPrivateKey({
    key: Buffer.concat([ed25519Pkcs8Prefix, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { keyId: publicKeyId(publicKey), privateKey, publicKey };
};

const publicKeyId = (publicKey: KeyObject): string => {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
};

/** What `audit public-key` prints: the public key as a JWK with its id. */
export const publicJwk = (key: CheckpointKey) => ({
  kty: 'OKP',
  crv: 'Ed25519',
  x: key.publicKey.export({ format: 'jwk' }).x as string,
  kid: key.keyId,
  alg: 'EdDSA',
  use: 'sig',
});

/** The signed text: a fixed-order JSON array, so no key order or spacing can change it. */
export const checkpointText = (c: Omit<Checkpoint, 'signature'>): string =>
  JSON.stringify(['tv-audit-checkpoint-1', c.seq, c.hash, c.time, c.key_id]);

export const signCheckpoint = (key: CheckpointKey, c: Omit<Checkpoint, 'signature' | 'key_id'>) => {
  const body = { seq: c.seq, hash: c.hash, time: c.time, key_id: key.keyId };
  return {
    ...body,
    signature: sign(null, Buffer.from(checkpointText(body)), key.privateKey).toString('base64url'),
  };
};

export const signatureValid = (publicKey: KeyObject, c: Checkpoint): boolean => {
  if (c.key_id !== publicKeyId(publicKey) || typeof c.signature !== 'string') return false;
  try {
    return verify(null, Buffer.from(checkpointText(c)), publicKey, Buffer.from(c.signature, 'base64url'));
  } catch {
    return false;
  }
};

export interface CheckpointProblem {
  seq: number;
  problem: 'bad_signature' | 'truncated' | 'altered';
  detail: string;
}

export interface CheckpointCheck {
  ok: boolean;
  /** Checkpoints that checked out before the first bad one. */
  checked: number;
  firstBad?: CheckpointProblem;
}

/**
 * Checks checkpoints (from the table or a shipped file) against the log, oldest first: each must carry
 * a valid signature under the vault's key, and the log must still hold its `(seq, hash)` at or below
 * the head. The chain check (`verifyChain`) proves the events below the head link up; this proves the
 * head was not moved back past something once signed.
 */
export const checkCheckpoints = async (
  db: Kysely<Database>,
  publicKey: KeyObject,
  checkpoints: readonly Checkpoint[],
): Promise<CheckpointCheck> => {
  const head = await db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst();
  const headSeq = Number(head?.seq ?? 0);
  const sorted = [...checkpoints].sort((a, b) => a.seq - b.seq);
  let checked = 0;
  const bad = (firstBad: CheckpointProblem): CheckpointCheck => ({ ok: false, checked, firstBad });
  for (const c of sorted) {
    if (!signatureValid(publicKey, c)) {
      return bad({
        seq: c.seq,
        problem: 'bad_signature',
        detail: `the checkpoint at event ${c.seq} does not carry a valid signature of the vault's checkpoint key: it was rewritten or forged`,
      });
    }
    if (headSeq < c.seq) {
      return bad({
        seq: c.seq,
        problem: 'truncated',
        detail: `a signed checkpoint records event ${c.seq}, but the log ends at event ${headSeq}: the newest events were removed and the head reset`,
      });
    }
    const row = await db
      .selectFrom('audit_events')
      .select('hash')
      .where('seq', '=', c.seq)
      .executeTakeFirst();
    if (row?.hash !== c.hash) {
      return bad({
        seq: c.seq,
        problem: 'altered',
        detail: row
          ? `event ${c.seq} does not have the hash a signed checkpoint records: the log was rewritten after it`
          : `event ${c.seq}, which a signed checkpoint records, is gone`,
      });
    }
    checked += 1;
  }
  return { ok: true, checked };
};

/** Parses a checkpoint file: one JSON checkpoint a line; blank lines are skipped. */
export const parseCheckpointLines = (text: string): Checkpoint[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      const c = JSON.parse(line) as Checkpoint;
      if (!Number.isSafeInteger(c.seq) || typeof c.hash !== 'string' || typeof c.time !== 'string') {
        throw new Error(`line ${i + 1} of the checkpoint file is not a checkpoint`);
      }
      return c;
    });

export interface CheckpointWriterDeps {
  db: Kysely<Database>;
  key: CheckpointKey;
  clock: Clock;
  /** Write one after this many new events; 0: not by count. */
  everyEvents: number;
  /** Write one when the head moved and this many seconds passed since the last; 0: not by time. */
  everySeconds: number;
  /** Append each checkpoint to this file too, as a JSON line, fsynced. */
  file?: string | undefined;
  logger: { warn(object: Record<string, unknown>, message: string): void };
  /** How often the head is looked at, in milliseconds. */
  pollMs?: number;
}

/**
 * The background writer: a timer that looks at the head and writes a checkpoint when enough events or
 * time have passed, and a last one on stop. Replicas may each write one for the same head: the seq is
 * the key, so the second insert is skipped (both lines land in the file; either verifies).
 */
export const createCheckpointWriter = ({
  db,
  key,
  clock,
  everyEvents,
  everySeconds,
  file,
  logger,
  pollMs = 1000,
}: CheckpointWriterDeps) => {
  const enabled = everyEvents > 0 || everySeconds > 0;
  let last: { seq: number; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<Checkpoint | undefined> = Promise.resolve(undefined);

  const lastStored = async () => {
    const row = await db
      .selectFrom('audit_checkpoints')
      .select(['seq', 'time'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { seq: Number(row.seq), at: Date.parse(row.time) } : { seq: 0, at: 0 };
  };

  const write = async (force: boolean): Promise<Checkpoint | undefined> => {
    last ??= await lastStored();
    const head = await db
      .selectFrom('audit_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirst();
    const seq = Number(head?.seq ?? 0);
    if (!head || seq <= last.seq) return undefined;
    const now = clock.now();
    const due =
      force ||
      (everyEvents > 0 && seq - last.seq >= everyEvents) ||
      (everySeconds > 0 && now.getTime() - last.at >= everySeconds * 1000);
    if (!due) return undefined;
    const checkpoint = signCheckpoint(key, { seq, hash: head.hash, time: now.toISOString() });
    await db
      .insertInto('audit_checkpoints')
      .values(checkpoint)
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
    if (file) await appendLine(file, JSON.stringify(checkpoint));
    last = { seq, at: now.getTime() };
    return checkpoint;
  };

  /** One look at the head; serialized, so a slow write is never overlapped by the next tick. */
  const tick = (force = false): Promise<Checkpoint | undefined> => {
    if (!enabled) return Promise.resolve(undefined);
    running = running.then(
      () => write(force),
      () => write(force),
    );
    return running;
  };

  const safeTick = () =>
    void tick().catch((error: unknown) =>
      logger.warn({ err: error }, 'could not write an audit checkpoint; trying again'),
    );

  /** The stored checkpoints and any shipped ones (`posted`) against the log: see `checkCheckpoints`. */
  const check = async (posted: readonly Checkpoint[] = []): Promise<CheckpointCheck> => {
    const stored = await db.selectFrom('audit_checkpoints').selectAll().execute();
    const rows = stored.map((c) => ({ ...c, seq: Number(c.seq) }));
    return checkCheckpoints(db, key.publicKey, [...rows, ...posted]);
  };

  return {
    tick,
    check,
    start() {
      if (enabled) timer = setInterval(safeTick, pollMs).unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await tick(true).catch((error: unknown) =>
        logger.warn({ err: error }, 'could not write the last audit checkpoint on stop'),
      );
    },
  };
};

export type CheckpointWriter = ReturnType<typeof createCheckpointWriter>;

const appendLine = async (file: string, line: string): Promise<void> => {
  const handle = await open(file, 'a', 0o600);
  try {
    await handle.write(`${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
};
