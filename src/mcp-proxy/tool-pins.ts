import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import type { Db, McpProxy } from './proxy-repo.js';
import { requireProxy } from './proxy-admin-service.js';

/**
 * Pinned tool definitions: an upstream's tool names, descriptions and schemas are recorded the first
 * time the vault sees its tool list, and a definition that later changes (or a tool that appears) is
 * withheld from agents, audited and reported, until an admin accepts it. A tool whose description
 * changes after it was approved ("rug pull") can then not change under the agent.
 *
 * `accepted` is the definition agents see (its changes move the access generation, migration 0013);
 * `observed` is a differing definition the upstream announced, waiting (it moves nothing).
 */

/** What of a tool is pinned: everything that tells a model what the tool does. */
export const canonicalTool = (tool: Record<string, unknown>): string => {
  const sort = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sort)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value as Record<string, unknown>)
              .sort()
              .map((k) => [k, sort((value as Record<string, unknown>)[k])]),
          )
        : value;
  const { name, title, description, inputSchema, outputSchema, annotations } = tool;
  return JSON.stringify(sort({ name, title, description, inputSchema, outputSchema, annotations }));
};

export type PinStatus = 'accepted' | 'changed' | 'new';

export interface PinView {
  tool: string;
  status: PinStatus;
  accepted: unknown;
  observed: unknown;
  observedAt: string | null;
}

const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export interface ToolPinsDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

export const createToolPins = ({ db, clock, audit }: ToolPinsDeps) => {
  const rowsOf = (trx: Db, proxyId: string) =>
    trx.selectFrom('mcp_proxy_tools').selectAll().where('proxy_id', '=', proxyId).execute();

  return {
    /**
     * Records a tool list the upstream sent and returns the names agents may see: those whose
     * definition is the accepted one. The first list of a proxy is accepted as it is (pinned on first
     * connect); a later new or changed definition is kept as `observed`, withheld, and recorded once
     * per change as `mcp_proxy.tools.change`.
     */
    async observe(proxy: McpProxy, tools: readonly Record<string, unknown>[]): Promise<Set<string>> {
      const now = clock.now().toISOString();
      const permitted = new Set<string>();
      const changes: { tool: string; status: PinStatus }[] = [];
      await db.transaction().execute(async (trx) => {
        const rows = new Map((await rowsOf(trx, proxy.id)).map((r) => [r.tool, r]));
        const first = rows.size === 0;
        for (const tool of tools) {
          const name = String(tool.name).slice(0, 200);
          const definition = canonicalTool(tool);
          const row = rows.get(name);
          if (!row) {
            await trx
              .insertInto('mcp_proxy_tools')
              .values({
                id: newId(),
                namespace: proxy.namespace,
                proxy_id: proxy.id,
                tool: name,
                accepted: first ? definition : null,
                observed: first ? null : definition,
                observed_at: first ? null : now,
                accepted_at: first ? now : null,
              })
              .execute();
            if (first) permitted.add(name);
            else changes.push({ tool: name, status: 'new' });
          } else if (row.accepted === definition) {
            permitted.add(name);
            if (row.observed !== null) {
              await trx
                .updateTable('mcp_proxy_tools')
                .set({ observed: null, observed_at: null })
                .where('id', '=', row.id)
                .execute();
            }
          } else if (row.observed !== definition) {
            await trx
              .updateTable('mcp_proxy_tools')
              .set({ observed: definition, observed_at: now })
              .where('id', '=', row.id)
              .execute();
            changes.push({ tool: name, status: row.accepted === null ? 'new' : 'changed' });
          }
        }
        if (first || changes.length > 0) {
          await audit.recordInTransaction(trx, {
            namespace: proxy.namespace,
            actor: { type: 'system', id: null },
            action: first ? 'mcp_proxy.tools.pin' : 'mcp_proxy.tools.change',
            target: { type: 'mcp_proxy', id: proxy.id },
            decision: first ? 'allow' : 'deny',
            reason: first ? 'ok' : 'mcp_tool_withheld',
            details: {
              proxy_id: proxy.id,
              proxy_name: proxy.name,
              tools: first ? [...permitted] : changes.map((c) => `${c.tool} (${c.status})`),
            },
          });
        }
      });
      return permitted;
    },

    /** Whether a call to `tool` may go through: its accepted definition is the one the upstream announces. */
    async callable(proxy: McpProxy, tool: string): Promise<boolean> {
      const row = await db
        .selectFrom('mcp_proxy_tools')
        .select(['accepted', 'observed'])
        .where('proxy_id', '=', proxy.id)
        .where('tool', '=', tool)
        .executeTakeFirst();
      // No row: the upstream has not listed the tool yet, so there is no definition to hold it to.
      return row !== undefined && row.accepted !== null && row.observed === null;
    },

    /** Every pinned tool with its status and, for a change, both definitions. */
    async list(namespace: string, name: string): Promise<PinView[]> {
      const proxy = await requireProxy(db, namespace, name);
      return (await rowsOf(db, proxy.id))
        .sort((a, b) => a.tool.localeCompare(b.tool))
        .map((r) => ({
          tool: r.tool,
          status: r.observed === null ? 'accepted' : r.accepted === null ? 'new' : 'changed',
          accepted: parse(r.accepted),
          observed: parse(r.observed),
          observedAt: r.observed_at,
        }));
    },

    /** Accepts every waiting definition (or only `tools`): agents see and may call them from now on. */
    accept: (namespace: string, name: string, tools: readonly string[] | undefined, ctx: AuditContext) =>
      auditedChange(
        { db, audit },
        { ctx, namespace, action: 'mcp_proxy.tools.accept', target: { type: 'mcp_proxy', id: name } },
        async (trx, record) => {
          const proxy = await requireProxy(trx, namespace, name);
          const waiting = (await rowsOf(trx, proxy.id)).filter(
            (r) => r.observed !== null && (tools === undefined || tools.includes(r.tool)),
          );
          const now = clock.now().toISOString();
          for (const row of waiting) {
            await trx
              .updateTable('mcp_proxy_tools')
              .set({ accepted: row.observed, observed: null, observed_at: null, accepted_at: now })
              .where('id', '=', row.id)
              .execute();
          }
          const accepted = waiting.map((r) => r.tool);
          await record({
            target: { type: 'mcp_proxy', id: proxy.id },
            details: { proxy_id: proxy.id, proxy_name: proxy.name, tools: accepted },
          });
          return accepted;
        },
      ),
  };
};

export type ToolPins = ReturnType<typeof createToolPins>;
