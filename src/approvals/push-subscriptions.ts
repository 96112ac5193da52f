import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { pushSubscriptionRepo } from './approval-repo.js';

/** A browser's `PushSubscription` as the page sends it (its endpoint and RFC 8291 keys). */
export interface BrowserSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * Browsers subscribed to Web Push on the approval page, each for the approver (admin token name) who
 * subscribed it; the notifier pushes to those of a new approval's approvers (approval-notifier.ts).
 */
export const createPushSubscriptions = ({
  db,
  clock,
  audit,
}: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}) => ({
  /** Subscribes a browser for `approver`; the same browser again replaces its keys and approver. */
  subscribe: (approver: string, subscription: BrowserSubscription, ctx: AuditContext): Promise<string> =>
    auditedChange(
      { db, audit },
      {
        ctx,
        namespace: 'default',
        action: 'approval.subscribe',
        target: { type: 'push_subscription', id: null },
        details: { approver: approver.slice(0, 64) },
      },
      async (trx, record) => {
        const id = newId();
        await pushSubscriptionRepo.upsert(trx, {
          id,
          approver,
          endpoint: subscription.endpoint,
          p256dh: subscription.keys.p256dh,
          auth: subscription.keys.auth,
          created_at: clock.now().toISOString(),
        });
        await record({
          target: { type: 'push_subscription', id },
          details: { push_host: new URL(subscription.endpoint).host },
        });
        return id;
      },
    ),
});

export type PushSubscriptions = ReturnType<typeof createPushSubscriptions>;
