import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes, errorRegistry } from './error-registry.js';
import { VaultError } from './vault-error.js';

const documented = (): Map<string, number> => {
  const page = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...page.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)];
  return new Map(rows.map((m) => [m[1] as string, Number(m[2])]));
};

describe('error registry', () => {
  it('documents every code in docs/errors.md, with its status, and nothing stale', () => {
    const docs = documented();
    expect([...docs.keys()].sort()).toEqual([...errorCodes].sort());
    for (const code of errorCodes) expect(docs.get(code), code).toBe(errorRegistry[code].status);
  });

  it('uses stable snake_case codes, client or server statuses, and messages a person can act on', () => {
    for (const [code, entry] of Object.entries(errorRegistry)) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      // One 2xx: a parked request is accepted for a person to decide, not refused (approvals.md).
      expect(entry.status).toBeGreaterThanOrEqual(code === 'approval_pending' ? 202 : 400);
      expect(entry.status).toBeLessThan(600);
      expect(entry.message.length).toBeGreaterThan(10);
      expect(entry.message).toMatch(/[.)]$/);
    }
  });

  it('gives a VaultError its registered status and default message', () => {
    const error = new VaultError('credential_exists');
    expect(error.status).toBe(409);
    expect(error.message).toBe(errorRegistry.credential_exists.message);
    expect(new VaultError('credential_exists', 'custom').message).toBe('custom');
  });
});
