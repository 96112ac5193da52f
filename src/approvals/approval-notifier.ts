import { createECDH } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import webpush from 'web-push';
import type { AuditRecorder } from '../audit/audit-types.js';
import type { GuardedFetch } from '../net/outbound-guard.js';
import type { Database } from '../store/schema.js';
import { type ApprovalLinks, deriveKey } from './approval-links.js';
import { pushSubscriptionRepo } from './approval-repo.js';
import { type Approval, requestIdentities } from './approval-rules.js';

/**
 * Telling approvers a request waits for them (docs/approvals.md, "Notifications"), off the request
 * path: Web Push to the browsers approvers subscribed on the approval page (VAPID, RFC 8291
 * `aes128gcm` payloads, encrypted by the `web-push` package and sent through the outbound guard),
 * and an ntfy-style topic (a plain POST, optional bearer token). The signed webhook is the
 * `approval.requested` event, published with the approval itself (approval-service.ts). Each
 * notification carries, per approver, signed one-time links to approve and deny; an approver who is
 * the request's own identity gets none. Every delivery, sent or failed, is an `approval.notify` event.
 */

export interface VapidKeys {
  subject: string;
  /** Uncompressed P-256 point, base64url: what a browser's `applicationServerKey` takes. */
  publicKey: string;
  privateKey: string;
}

/**
 * The VAPID key pair, derived from a root key (the audit chain key) rather than generated and stored:
 * every replica has the same one, it is never written anywhere, and it lives as long as the vault
 * (browsers' subscriptions are bound to it).
 */
export const deriveVapidKeys = (root: Uint8Array, subject: string): VapidKeys => {
  for (let n = 1; ; n += 1) {
    const scalar = deriveKey(root, `approval vapid p256 v1 ${n}`);
    const ecdh = createECDH('prime256v1');
    try {
      ecdh.setPrivateKey(scalar);
    } catch {
      continue; // Not below the group order (about 2^-32 likely): the next derivation is.
    }
    return {
      subject,
      publicKey: ecdh.getPublicKey().toString('base64url'),
      privateKey: scalar.toString('base64url'),
    };
  }
};

export interface NtfyTarget {
  url: string;
  token?: string | undefined;
}

export interface ApprovalNotifierDeps {
  db: Kysely<Database>;
  audit: Pick<AuditRecorder, 'record'>;
  fetch: GuardedFetch;
  links: ApprovalLinks;
  vapid: VapidKeys;
  ntfy?: NtfyTarget | undefined;
  /** The approval page's URL, for a notification's "open" action. */
  pageUrl: string;
  logger: Pick<Logger, 'warn'>;
}

/** The message every channel carries (no secret: names and ids only, and the signed links). */
export interface ApprovalMessage {
  type: 'approval.requested';
  approval_id: string;
  title: string;
  body: string;
  expires_at: string;
  page_url: string;
  /** Per approver who may decide it. */
  links: { approver: string; approve_url: string; deny_url: string }[];
}

const deliveryTimeoutMs = 10_000;

export const createApprovalNotifier = (deps: ApprovalNotifierDeps) => {
  const { db, audit, fetch, links, vapid, ntfy, pageUrl, logger } = deps;

  const messageFor = (approval: Approval, approvers: readonly string[]): ApprovalMessage => {
    const expiresAt = Math.floor(Date.parse(approval.expiresAt) / 1000);
    const linkFor = (approver: string) => ({
      approver,
      approve_url: links.url({ approvalId: approval.id, decision: 'approve', approver, expiresAt }),
      deny_url: links.url({ approvalId: approval.id, decision: 'deny', approver, expiresAt }),
    });
    const who = approval.endUser ? ` for ${approval.endUser}` : '';
    return {
      type: 'approval.requested',
      approval_id: approval.id,
      title: `Approve ${approval.agent.name} → ${approval.credential.name}?`,
      body: `${approval.agent.name} asks to use ${approval.credential.name}${who} (policy ${approval.policy.name}); expires ${approval.expiresAt}.`,
      expires_at: approval.expiresAt,
      page_url: pageUrl,
      links: approvers.map(linkFor),
    };
  };

  /** The approvers who may decide: listed, and not the request's own identity. */
  const eligible = (approval: Approval) => {
    const own = requestIdentities(approval).map((n) => n.toLowerCase());
    return approval.approvers.filter((a) => !own.includes(a.toLowerCase()));
  };

  const recordDelivery = async (approval: Approval, channel: string, outcome: string, extra = {}) => {
    try {
      await audit.record({
        namespace: approval.namespace,
        actor: { type: 'system', id: null },
        action: 'approval.notify',
        target: { type: 'approval', id: approval.id },
        decision: outcome === 'ok' ? 'allow' : 'deny',
        reason: outcome,
        details: {
          approval_id: approval.id,
          agent_id: approval.agent.id,
          agent_name: approval.agent.name,
          credential_id: approval.credential.id,
          credential_name: approval.credential.name,
          channel,
          ...extra,
        },
      });
    } catch (error) {
      logger.warn({ err: error, approval: approval.id }, 'could not record an approval notification');
    }
  };

  const sendPush = async (approval: Approval, approvers: readonly string[]) => {
    for (const subscription of await pushSubscriptionRepo.forApprovers(db, approvers)) {
      const payload = JSON.stringify(messageFor(approval, [subscription.approver]));
      const details = webpush.generateRequestDetails(
        { endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
        payload,
        { vapidDetails: vapid, TTL: 3600, contentEncoding: 'aes128gcm', urgency: 'high' },
      );
      const facts = { approver: subscription.approver, subscription_id: subscription.id };
      try {
        const response = await fetch(details.endpoint, {
          method: 'POST',
          headers: Object.fromEntries(Object.entries(details.headers).map(([k, v]) => [k, String(v)])),
          body: details.body,
          signal: AbortSignal.timeout(deliveryTimeoutMs),
        });
        await response.arrayBuffer();
        // 404/410: the browser unsubscribed; the push service will never take it again.
        if (response.status === 404 || response.status === 410) {
          await pushSubscriptionRepo.remove(db, subscription.endpoint);
        }
        await recordDelivery(approval, 'web_push', response.ok ? 'ok' : 'delivery_failed', {
          ...facts,
          status: response.status,
        });
      } catch (error) {
        logger.warn({ err: error, approval: approval.id }, 'web push delivery failed');
        await recordDelivery(approval, 'web_push', 'delivery_failed', facts);
      }
    }
  };

  const sendNtfy = async (approval: Approval, approvers: readonly string[], target: NtfyTarget) => {
    const message = messageFor(approval, approvers);
    const lines = message.links.map((l) => `${l.approver}: approve ${l.approve_url} · deny ${l.deny_url}`);
    const first = message.links[0];
    const headers: Record<string, string> = {
      'content-type': 'text/plain; charset=utf-8',
      // Header values are bytes: the title in ASCII (the body carries the rest in UTF-8).
      title: message.title.replace('→', '->').replace(/[^\x20-\x7e]/g, '?'),
      tags: 'lock',
      click: message.page_url,
    };
    // ntfy's action buttons open the signed link's confirmation page (view), for the first approver.
    if (first)
      headers.actions = `view, Approve (${first.approver}), ${first.approve_url}; view, Deny, ${first.deny_url}`;
    if (target.token) headers.authorization = `Bearer ${target.token}`;
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers,
        body: [message.body, '', ...lines].join('\n'),
        signal: AbortSignal.timeout(deliveryTimeoutMs),
      });
      await response.arrayBuffer();
      await recordDelivery(approval, 'ntfy', response.ok ? 'ok' : 'delivery_failed', {
        status: response.status,
      });
    } catch (error) {
      logger.warn({ err: error, approval: approval.id }, 'ntfy delivery failed');
      await recordDelivery(approval, 'ntfy', 'delivery_failed');
    }
  };

  /** Notifies every channel of a new approval; never throws (a failed delivery is recorded). */
  const notify = async (approval: Approval): Promise<void> => {
    const approvers = eligible(approval);
    await Promise.all([
      sendPush(approval, approvers),
      ntfy ? sendNtfy(approval, approvers, ntfy) : undefined,
    ]);
  };

  const inFlight = new Set<Promise<void>>();
  return {
    messageFor,
    /** The signed links of every approver who may decide, for the `approval.requested` webhook. */
    linksFor: (approval: Approval) => messageFor(approval, eligible(approval)).links,
    notify,
    /** Starts notifying without holding the request that parked (stop() waits for what is in flight). */
    start(approval: Approval): void {
      const sending = notify(approval).catch((error: unknown) => {
        logger.warn({ err: error, approval: approval.id }, 'approval notification failed');
      });
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
    },
    async drain(): Promise<void> {
      await Promise.all([...inFlight]);
    },
  };
};

export type ApprovalNotifier = ReturnType<typeof createApprovalNotifier>;
