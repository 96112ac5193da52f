import { createHmac, hkdfSync } from 'node:crypto';
import { VaultError } from '../errors/vault-error.js';
import { constantTimeEqual } from '../lib/token-hash.js';

/**
 * Signed one-time links in notifications (docs/approvals.md, "Signed links"). A link names one
 * approval, one decision and the approver it was sent to, and is good until the approval's expiry.
 * It is signed with HMAC-SHA-256 under a key every replica derives from the same root (the audit
 * chain key, by HKDF with its own label), so any replica accepts it and nothing new is stored. It is
 * one-time because an approval is decided once: the second use of any link of that approval is
 * `approval_already_decided`. Opening a link (GET) shows a confirmation; only the POST decides, so a
 * mail scanner or link preview fetching it decides nothing.
 */

export type LinkDecision = 'approve' | 'deny';

export interface LinkClaims {
  approvalId: string;
  decision: LinkDecision;
  /** The approver the link was sent to: the decision is theirs (self-approval is checked for them). */
  approver: string;
  /** Unix seconds. */
  expiresAt: number;
}

/** Derives a purpose-bound 32-byte key from a root key: links and VAPID never share one. */
export const deriveKey = (root: Uint8Array, label: string): Buffer =>
  Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `tokenvault ${label}`, 32));

export const createApprovalLinks = ({ key, baseUrl }: { key: Uint8Array; baseUrl: string }) => {
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');

  const sign = (claims: LinkClaims): string => {
    const payload = Buffer.from(
      JSON.stringify([claims.approvalId, claims.decision, claims.approver, claims.expiresAt]),
    ).toString('base64url');
    return `${payload}.${mac(payload)}`;
  };

  return {
    sign,

    /** The link a person opens: a confirmation page on the vault. */
    url: (claims: LinkClaims): string =>
      `${baseUrl.replace(/\/$/, '')}/approvals/link?t=${encodeURIComponent(sign(claims))}`,

    /** The claims of a valid, unexpired link; else `approval_link_invalid`. */
    verify(token: string, now: Date): LinkClaims {
      const [payload, signature, extra] = token.split('.');
      if (!payload || !signature || extra !== undefined || !constantTimeEqual(mac(payload), signature)) {
        throw new VaultError('approval_link_invalid');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        throw new VaultError('approval_link_invalid');
      }
      if (!Array.isArray(parsed) || parsed.length !== 4) throw new VaultError('approval_link_invalid');
      const [approvalId, decision, approver, expiresAt] = parsed as unknown[];
      if (
        typeof approvalId !== 'string' ||
        (decision !== 'approve' && decision !== 'deny') ||
        typeof approver !== 'string' ||
        typeof expiresAt !== 'number'
      ) {
        throw new VaultError('approval_link_invalid');
      }
      if (expiresAt * 1000 <= now.getTime()) {
        throw new VaultError('approval_link_invalid', 'The approval link has expired with its approval.');
      }
      return { approvalId, decision, approver, expiresAt };
    },
  };
};

export type ApprovalLinks = ReturnType<typeof createApprovalLinks>;
