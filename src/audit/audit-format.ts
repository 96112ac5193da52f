import type { Selectable } from 'kysely';
import type { AuditEventTable } from '../store/schema.js';
import { chainedColumns } from './audit-hash.js';
import type { ActorType, AuditDetails, AuditEvent, Decision } from './audit-types.js';

export type ExportFormat = 'jsonl' | 'csv';

/** The columns of an event, in the order the exports and the chain use them. */
export const eventColumns = [
  'seq',
  ...chainedColumns,
  'prev_hash',
  'hash',
] as const satisfies readonly (keyof AuditEvent)[];

const parseDetails = (text: string): AuditDetails => {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as AuditDetails;
  } catch {
    // An unreadable details column was altered; `verify` reports it, listing still shows the text.
  }
  return { unparseable: text.slice(0, 512) };
};

/** A stored row as the API shows it: seq as a number (pg returns bigint as text), details parsed. */
export const toAuditEvent = (row: Selectable<AuditEventTable>): AuditEvent => ({
  seq: Number(row.seq),
  id: row.id,
  time: row.time,
  namespace: row.namespace,
  actor_type: row.actor_type as ActorType,
  actor_id: row.actor_id,
  action: row.action,
  target_type: row.target_type,
  target_id: row.target_id,
  decision: row.decision as Decision,
  reason: row.reason,
  client_ip: row.client_ip,
  user_agent: row.user_agent,
  request_id: row.request_id,
  details: parseDetails(row.details),
  prev_hash: row.prev_hash,
  hash: row.hash,
});

/** One JSON object per line, keys in column order, as `GET /v1/admin/audit/events` shows them. */
export const jsonLine = (row: Selectable<AuditEventTable>): string =>
  `${JSON.stringify(toAuditEvent(row))}\n`;

/**
 * RFC 4180 quoting. A cell a spreadsheet would run as a formula (starting `=`, `+`, `-`, `@`, tab or
 * CR; the user agent is client-controlled) gets a leading `'`, as OWASP advises; JSONL is the exact,
 * machine-readable export.
 */
const csvCell = (value: string | number | null): string => {
  if (value === null) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export const csvHeader = `${eventColumns.join(',')}\r\n`;

/** One CSV record; `details` is the stored sorted-key JSON text. */
export const csvLine = (row: Selectable<AuditEventTable>): string =>
  `${eventColumns
    .map((c) => csvCell(c === 'seq' ? Number(row.seq) : (row[c] as string | null)))
    .join(',')}\r\n`;
