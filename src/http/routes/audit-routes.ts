import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditFilters } from '../../audit/audit-service.js';
import type { VaultServices } from '../../services.js';
import { publicJwk } from '../../audit/audit-checkpoints.js';
import { EventList, PublicKeyView, VerifyBody, VerifyView } from '../schemas/audit-schemas.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';

const tags = ['audit'];
const security = [{ adminToken: [] }];

/**
 * Reading the log is not itself recorded: an event per look would grow the log with every `audit list`
 * (and every page of it), the reads change nothing and return no secret, and `verify` must still answer
 * when the log cannot be written, which is exactly when an operator needs it. A failed admin
 * authentication on these routes is still recorded (`admin.authenticate`).
 */
const auditRead = {
  none: 'reads the audit log: changes nothing, returns no secret, and must work while the log cannot be written',
};

const Filters = {
  namespace: Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'Only this namespace (default: the namespace header, else all).',
    }),
  ),
  agent: Type.Optional(
    Type.String({ maxLength: 200, description: 'An agent id or name: events it did, or about it.' }),
  ),
  credential: Type.Optional(Type.String({ maxLength: 200, description: 'A credential name or id.' })),
  action: Type.Optional(
    Type.String({
      maxLength: 64,
      pattern: '^[a-z][a-z0-9_.]*(\\.\\*)?$',
      description: 'An action (`credential.create`), or a prefix such as `credential.*`.',
    }),
  ),
  decision: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
  since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO-8601; events at or after it.' })),
  until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO-8601; events at or before it.' })),
};

const EventsQuery = Type.Object(
  {
    ...Filters,
    limit: Type.Optional(
      Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: 'Page size, 1 to 1000 (default 100).' }),
    ),
    after: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,15}$', description: 'The `next_cursor` of the previous page.' }),
    ),
    order: Type.Optional(
      Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
        description: '`asc` oldest first (default), `desc` newest first.',
      }),
    ),
  },
  { additionalProperties: false },
);

const ExportQuery = Type.Object(
  { ...Filters, format: Type.Optional(Type.Union([Type.Literal('jsonl'), Type.Literal('csv')])) },
  { additionalProperties: false },
);

/** The namespace filter: the query's, else the namespace header's (`tokenvault -n NS audit list`). */
const filtersOf = (
  q: Static<typeof ExportQuery>,
  headers: { 'x-tokenvault-namespace'?: string },
): AuditFilters => ({
  namespace: q.namespace ?? headers['x-tokenvault-namespace'],
  agent: q.agent,
  credential: q.credential,
  action: q.action,
  decision: q.decision,
  since: q.since,
  until: q.until,
});

export const registerAuditRoutes = (
  app: FastifyInstance,
  { auditLog, auditCheckpoints }: Pick<VaultServices, 'auditLog' | 'auditCheckpoints'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/admin/audit/events',
    {
      config: { audit: auditRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'List audit events matching the filters, a page at a time (keyset on seq)',
        headers: NamespaceHeader,
        querystring: EventsQuery,
        response: withErrors({ 200: EventList }),
      },
    },
    async (request) => {
      const q = request.query;
      const page = await auditLog.list({
        ...filtersOf(q, request.headers),
        limit: q.limit === undefined ? 100 : Number(q.limit),
        afterSeq: q.after === undefined ? undefined : Number(q.after),
        order: q.order,
      });
      return { items: page.items, next_cursor: page.nextSeq === null ? null : String(page.nextSeq) };
    },
  );

  r.get(
    '/v1/admin/audit/export',
    {
      config: { audit: auditRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'Stream every matching event, oldest first, as JSON lines or CSV',
        headers: NamespaceHeader,
        querystring: ExportQuery,
        response: withErrors({
          // A stream is never serialized; the schema documents the body for OpenAPI.
          200: Type.Unsafe<Readable>({
            type: 'string',
            description: 'application/x-ndjson or text/csv, streamed.',
          }),
        }),
      },
    },
    async (request, reply) => {
      const format = request.query.format ?? 'jsonl';
      const chunks = await auditLog.export(format, filtersOf(request.query, request.headers));
      const day = new Date().toISOString().slice(0, 10);
      return reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="audit-${day}.${format}"`)
        .send(Readable.from(chunks));
    },
  );

  r.post(
    '/v1/admin/audit/verify',
    {
      // A year of checkpoints a minute apart is about 100 MB of lines; a day's is well under this.
      bodyLimit: 16 * 1024 * 1024,
      config: { audit: auditRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary:
          'Re-hash the whole chain, check the signed checkpoints (stored, and any posted), and name the first bad event',
        body: VerifyBody,
        response: withErrors({ 200: VerifyView }),
      },
    },
    async (request) => {
      const result = await auditLog.verify();
      const checkpoints = await auditCheckpoints.writer.check(request.body?.checkpoints ?? []);
      const checkpointBad = checkpoints.firstBad && {
        seq: checkpoints.firstBad.seq,
        id: null,
        problem: checkpoints.firstBad.problem,
        detail: checkpoints.firstBad.detail,
      };
      return {
        ok: result.ok && checkpoints.ok,
        checked: result.checked,
        head: result.head,
        keyed_from: result.keyedFrom ?? null,
        // The chain's own break comes first: a checkpoint mismatch past it is its consequence.
        first_bad: result.firstBad ?? checkpointBad ?? null,
        checkpoints_checked: checkpoints.checked,
      };
    },
  );

  r.get(
    '/v1/admin/audit/public-key',
    {
      config: { audit: auditRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'The Ed25519 public key (JWK) that verifies the audit checkpoints',
        response: withErrors({ 200: PublicKeyView }),
      },
    },
    async () => publicJwk(auditCheckpoints.key),
  );
};
