import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { createApprovalLinks, deriveKey } from './approval-links.js';
import { deriveVapidKeys } from './approval-notifier.js';

const root = Buffer.alloc(32, 9);
const links = createApprovalLinks({
  key: deriveKey(root, 'approval links v1'),
  baseUrl: 'https://vault.example/',
});
const claims = {
  approvalId: 'a1',
  decision: 'approve' as const,
  approver: 'alice',
  expiresAt: 1_800_000_000,
};
const now = new Date(1_700_000_000_000);
const refusal = (token: string, at = now) => {
  try {
    links.verify(token, at);
    return 'ok';
  } catch (error) {
    return isVaultError(error) ? error.code : String(error);
  }
};

describe('signed approval links', () => {
  it('round-trips the approval, the decision and the approver, on the vault’s public URL', () => {
    const url = new URL(links.url(claims));
    expect(url.origin + url.pathname).toBe('https://vault.example/approvals/link');
    expect(links.verify(url.searchParams.get('t')!, now)).toEqual(claims);
  });

  it('refuses a link whose payload or signature was changed, or one signed under another key', () => {
    const token = links.sign(claims);
    const [payload, signature] = token.split('.') as [string, string];
    const other = Buffer.from(JSON.stringify(['a1', 'approve', 'mallory', 1_800_000_000])).toString(
      'base64url',
    );
    expect(refusal(`${other}.${signature}`)).toBe('approval_link_invalid');
    expect(refusal(`${payload}.${signature.slice(0, -2)}AA`)).toBe('approval_link_invalid');
    const foreign = createApprovalLinks({
      key: deriveKey(Buffer.alloc(32, 1), 'approval links v1'),
      baseUrl: '',
    });
    expect(refusal(foreign.sign(claims))).toBe('approval_link_invalid');
    expect(refusal('garbage')).toBe('approval_link_invalid');
  });

  it('expires with its approval', () => {
    expect(refusal(links.sign(claims), new Date(1_800_000_000_000))).toBe('approval_link_invalid');
  });

  it('derives one VAPID key pair per root, the same on every replica, apart from the link key', () => {
    const vapid = deriveVapidKeys(root, 'mailto:ops@example.com');
    expect(deriveVapidKeys(root, 'mailto:ops@example.com')).toEqual(vapid);
    expect(Buffer.from(vapid.publicKey, 'base64url')).toHaveLength(65);
    expect(Buffer.from(vapid.privateKey, 'base64url')).toHaveLength(32);
    expect(deriveVapidKeys(Buffer.alloc(32, 1), 'mailto:ops@example.com').publicKey).not.toBe(
      vapid.publicKey,
    );
    expect(vapid.privateKey).not.toBe(deriveKey(root, 'approval links v1').toString('base64url'));
  });
});
