import { createHmac, hash as oneShotHash } from 'node:crypto';
import type { AuditEventTable } from '../store/schema.js';
import type { AuditDetails } from './audit-types.js';

/** `prev_hash` of the first event: there is nothing before it. */
export const genesisHash = '0'.repeat(64);

/**
 * The fields of a stored event that its hash covers, named as the columns are. `seq` is not among
 * them: an event's place in the chain is fixed by `prev_hash`, and `verify` checks separately that the
 * seqs run 1, 2, 3, … without a gap, so a swap shows up as a broken link rather than as an edit.
 */
export type ChainedFields = Omit<AuditEventTable, 'seq' | 'prev_hash' | 'hash'>;

/** Sorted-key JSON of the details object, with no whitespace: one text per set of facts. */
export const canonicalDetails = (details: AuditDetails | undefined): string => {
  if (!details) return '{}';
  const sorted: AuditDetails = {};
  for (const key of Object.keys(details).sort()) {
    const value = details[key];
    if (value !== undefined) sorted[key] = value;
  }
  return JSON.stringify(sorted);
};

/** First element of the canonical array: names this serialisation, so it can change one day. */
export const canonicalVersion = 'tv-audit-1';

/** The hashed columns, in canonical order (`verify` builds the same array in SQL). */
export const chainedColumns = [
  'id',
  'time',
  'namespace',
  'actor_type',
  'actor_id',
  'action',
  'target_type',
  'target_id',
  'decision',
  'reason',
  'client_ip',
  'user_agent',
  'request_id',
  'details',
] as const satisfies readonly (keyof ChainedFields)[];

/**
 * The canonical text of an event: a JSON array in a fixed field order (`chainedColumns`), nulls
 * explicit. JSON quoting makes it unambiguous (no value can pose as a field separator), and
 * `JSON.stringify` is native, which matters when `verify` hashes a million events.
 */
export const canonicalEvent = (e: ChainedFields): string =>
  JSON.stringify([
    canonicalVersion,
    e.id,
    e.time,
    e.namespace,
    e.actor_type,
    e.actor_id,
    e.action,
    e.target_type,
    e.target_id,
    e.decision,
    e.reason,
    e.client_ip,
    e.user_agent,
    e.request_id,
    e.details,
  ]);

/** `sha256(prev_hash + "\n" + canonical)`, hex: each event commits to the whole chain before it. */
export const hashCanonical = (prevHash: string, canonical: string): string =>
  oneShotHash('sha256', `${prevHash}\n${canonical}`, 'hex');

export const chainHash = (prevHash: string, e: ChainedFields): string =>
  hashCanonical(prevHash, canonicalEvent(e));

/**
 * The keyed link (docs/audit.md, "The keyed chain"): `hmac_sha256(key, prev_hash + "\n" + canonical)`,
 * hex, over the same text as `hashCanonical`. Without the key nobody can compute it, so whoever can
 * only write the database cannot rewrite an event and re-link the chain after it.
 */
export const hmacCanonical = (key: Buffer, prevHash: string, canonical: string): string =>
  createHmac('sha256', key).update(`${prevHash}\n${canonical}`).digest('hex');

/** The link of an event: keyed when a key is given, plain SHA-256 (the log before the switch) when not. */
export const linkHash = (prevHash: string, e: ChainedFields, key?: Buffer): string =>
  key ? hmacCanonical(key, prevHash, canonicalEvent(e)) : chainHash(prevHash, e);
