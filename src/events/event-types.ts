import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';

/**
 * Outbound events: what the vault tells the operator's systems (DESIGN "Per-user credentials and
 * events"). Each is delivered to the configured webhook, signed with the Standard Webhooks scheme and
 * retried with backoff. Dotted names, noun first, like audit actions.
 */
export const vaultEventTypes = [
  'credential.needs_reauth',
  'credential.reauthorized',
  'approval.requested',
  'approval.decided',
  'approval.expired',
] as const;
export type VaultEventType = (typeof vaultEventTypes)[number];

/** One event as a publisher describes it. `data` holds non-secret facts only (ids, names, codes). */
export interface VaultEvent {
  type: VaultEventType;
  namespace: string;
  data: Readonly<Record<string, string | number | boolean | null | readonly string[]>>;
}

/**
 * Publishes events. With `trx`, the event is written to the outbox inside that transaction, so it is
 * sent if and only if the change it announces commits (and survives a crash before delivery); without
 * it, in a transaction of its own. Delivery happens later, off the request path.
 */
export interface EventPublisher {
  publish(event: VaultEvent, trx?: Transaction<Database>): Promise<void>;
}
