import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ChainedFields,
  canonicalDetails,
  canonicalEvent,
  canonicalVersion,
  chainedColumns,
  chainHash,
  genesisHash,
} from './audit-hash.js';

const event: ChainedFields = {
  id: '0b8f5a52-8f7c-4d7e-9a51-3c1c0f1d2e3f',
  time: '2026-06-01T12:00:00.000Z',
  namespace: 'default',
  actor_type: 'admin',
  actor_id: 'tok-1',
  action: 'credential.create',
  target_type: 'credential',
  target_id: 'slack',
  decision: 'allow',
  reason: 'ok',
  client_ip: '127.0.0.1',
  user_agent: null,
  request_id: 'req_1',
  details: '{"method":"POST","status":201}',
};

describe('audit hash', () => {
  it('serialises in a fixed field order with explicit nulls', () => {
    expect(canonicalEvent(event)).toBe(
      '["tv-audit-1","0b8f5a52-8f7c-4d7e-9a51-3c1c0f1d2e3f","2026-06-01T12:00:00.000Z","default","admin","tok-1",' +
        '"credential.create","credential","slack","allow","ok","127.0.0.1",null,"req_1",' +
        '"{\\"method\\":\\"POST\\",\\"status\\":201}"]',
    );
  });

  it('lists its fields in chainedColumns, which verify builds the same array from in SQL', () => {
    expect(canonicalEvent(event)).toBe(
      JSON.stringify([canonicalVersion, ...chainedColumns.map((c) => event[c])]),
    );
    expect([...chainedColumns].sort()).toEqual(Object.keys(event).sort());
  });

  it('does not depend on the order the object was built in', () => {
    const reversed = Object.fromEntries(Object.entries(event).reverse()) as unknown as ChainedFields;
    expect(canonicalEvent(reversed)).toBe(canonicalEvent(event));
  });

  it('writes details with sorted keys, no whitespace, and undefined left out', () => {
    expect(canonicalDetails({ z: 1, a: ['x', 'y'], m: null, b: true })).toBe(
      '{"a":["x","y"],"b":true,"m":null,"z":1}',
    );
    expect(canonicalDetails({ b: '2', a: '1' })).toBe(canonicalDetails({ a: '1', b: '2' }));
    expect(canonicalDetails(undefined)).toBe('{}');
    expect(canonicalDetails({ a: undefined as unknown as string })).toBe('{}');
  });

  it('is sha256(prev_hash + "\\n" + canonical) in hex, from a genesis of 64 zeros', () => {
    expect(genesisHash).toBe('0'.repeat(64));
    const expected = createHash('sha256')
      .update(`${genesisHash}\n${canonicalEvent(event)}`)
      .digest('hex');
    expect(chainHash(genesisHash, event)).toBe(expected);
    expect(chainHash(genesisHash, event)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes when any field or the previous hash changes', () => {
    const base = chainHash(genesisHash, event);
    for (const key of Object.keys(event) as (keyof ChainedFields)[]) {
      const changed = { ...event, [key]: key === 'details' ? '{}' : `${String(event[key])}x` };
      expect(chainHash(genesisHash, changed), key).not.toBe(base);
    }
    expect(chainHash('1'.repeat(64), event)).not.toBe(base);
    // null and the string "null" are different values.
    expect(chainHash(genesisHash, { ...event, user_agent: 'null' })).not.toBe(base);
  });

  it('cannot be fooled by moving text between fields', () => {
    const a = { ...event, target_type: 'cred', target_id: 'ential' };
    const b = { ...event, target_type: 'credential', target_id: '' };
    expect(chainHash(genesisHash, a)).not.toBe(chainHash(genesisHash, b));
  });
});
