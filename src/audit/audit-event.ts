import { type ChainedFields, canonicalDetails } from './audit-hash.js';
import type { AuditDetails, AuditEventInput } from './audit-types.js';

/**
 * Turns what a caller describes into the fields that get hashed and stored: lengths capped, control
 * characters and lone surrogates replaced (PostgreSQL cannot store NUL, and a lone surrogate would be
 * stored differently from how it was hashed), and no secret.
 *
 * Defence in depth for DESIGN invariant 1. A token-shaped substring is replaced by `[redacted]`
 * wherever it appears, in the free-text fields and in `details` alike, and never refuses the event:
 * `details` hold caller-supplied values too (the agent named in a path, `?scope=` values, a refused
 * JWT's `iss`), and a caller must not be able to make its own access leave no record by sending one
 * (DESIGN invariant 2: every decision is recorded). Since a redaction in `details` can also mean our
 * own code put a secret there, each one is reported to `onRedacted` with the key, never the value, so
 * the writer logs a warning that names it. Only a malformed event (an unknown action, decision or
 * actor type, a bad key) is refused: those come from our code alone.
 */

/** Raised for an event that must not be written; the writer turns it into `audit_unavailable`. */
export class AuditInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditInputError';
  }
}

export const limits = {
  namespace: 64,
  actorId: 200,
  action: 64,
  targetType: 64,
  targetId: 256,
  reason: 128,
  clientIp: 64,
  userAgent: 512,
  requestId: 128,
  detailKeys: 32,
  detailString: 512,
  detailArrayItems: 100,
} as const;

const secretPatterns: RegExp[] = [
  // Vault tokens: a recognisable prefix and at least a few random characters after it.
  /tv_(?:agent|admin|proxy)_[A-Za-z0-9_-]{6,}/g,
  // A JWT or JWS (header.payload.signature, base64url, header starting `{"`).
  /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  // PEM private keys.
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/g,
];

/** Every pattern above contains one of these: a cheap test that spares the regexes on most strings. */
const mayHoldSecret = (value: string): boolean =>
  value.includes('tv_') || value.includes('eyJ') || value.includes('PRIVATE KEY');

export const looksSecret = (value: string): boolean =>
  mayHoldSecret(value) &&
  secretPatterns.some((pattern) => {
    pattern.lastIndex = 0;
    return pattern.test(value);
  });

export const redactSecrets = (value: string): string =>
  mayHoldSecret(value)
    ? secretPatterns.reduce((text, pattern) => text.replace(pattern, '[redacted]'), value)
    : value;

/* eslint-disable no-control-regex -- control characters are exactly what these find and remove */
const suspectCharacters = /[\u0000-\u001f\u007f\uD800-\uDFFF]/;
const unsafeCharacters =
  /[\u0000-\u001f\u007f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/* eslint-enable no-control-regex */

const clean = (value: string, max: number): string => {
  let text = suspectCharacters.test(value) ? value.replace(unsafeCharacters, '\uFFFD') : value;
  if (text.length > max) {
    text = text.slice(0, max - 1);
    // Never cut a surrogate pair in half.
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1);
    text += '…';
  }
  return text;
};

/** Client-supplied free text: cleaned, capped, any token-shaped part replaced. */
const freeText = (value: string | null | undefined, max: number): string | null =>
  value === null || value === undefined ? null : clean(redactSecrets(value), max);

const actionPattern = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const detailKeyPattern = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Told the key of every `details` value that had a token-shaped part replaced. */
export type OnRedacted = (key: string) => void;

const detailValue = (key: string, value: unknown, onRedacted: OnRedacted): AuditDetails[string] => {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new AuditInputError(`details.${key} is not a finite number`);
    return value;
  }
  let redacted = false;
  const text = (item: unknown): string => {
    if (typeof item !== 'string') throw new AuditInputError(`details.${key} holds a non-string value`);
    const safe = redactSecrets(item);
    if (safe !== item) redacted = true;
    return clean(safe, limits.detailString);
  };
  const result = Array.isArray(value) ? value.slice(0, limits.detailArrayItems).map(text) : text(value);
  if (redacted) onRedacted(key);
  return result;
};

const cleanDetails = (details: AuditDetails | undefined, onRedacted: OnRedacted): AuditDetails => {
  const result: AuditDetails = {};
  if (!details) return result;
  const keys = Object.keys(details).filter((key) => details[key] !== undefined);
  if (keys.length > limits.detailKeys) {
    throw new AuditInputError(`details has ${keys.length} keys; at most ${limits.detailKeys} are kept`);
  }
  for (const key of keys) {
    if (!detailKeyPattern.test(key))
      throw new AuditInputError(`details key "${clean(key, 64)}" is not valid`);
    result[key] = detailValue(key, details[key], onRedacted);
  }
  return result;
};

/** The hashed fields of an event, with the id and time the writer gives it. */
export const toChainedFields = (
  input: AuditEventInput,
  stamp: { id: string; time: string },
  onRedacted: OnRedacted = () => {},
): ChainedFields => {
  if (!actionPattern.test(input.action) || input.action.length > limits.action) {
    throw new AuditInputError(`action "${clean(input.action, 64)}" is not a dotted lowercase verb`);
  }
  if (input.decision !== 'allow' && input.decision !== 'deny') {
    throw new AuditInputError('decision must be allow or deny');
  }
  const actorTypes = ['agent', 'admin', 'system', 'anonymous'];
  if (!actorTypes.includes(input.actor.type)) throw new AuditInputError('actor type is not known');
  return {
    id: stamp.id,
    time: stamp.time,
    namespace: freeText(input.namespace, limits.namespace) ?? 'default',
    actor_type: input.actor.type,
    actor_id: freeText(input.actor.id, limits.actorId),
    action: input.action,
    target_type: freeText(input.target?.type, limits.targetType),
    target_id: freeText(input.target?.id, limits.targetId),
    decision: input.decision,
    reason: freeText(input.reason, limits.reason),
    client_ip: freeText(input.client?.ip, limits.clientIp),
    user_agent: freeText(input.client?.userAgent, limits.userAgent),
    request_id: freeText(input.requestId, limits.requestId),
    details: canonicalDetails(cleanDetails(input.details, onRedacted)),
  };
};
