import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace } from '../credentials/credential-types.js';
import type { Database } from '../store/schema.js';
import { grantLifetime, scopesOutside } from './grant-rules.js';
import { grantTargets } from './grant-repo.js';
import type { GrantRecord, GrantTerms } from './grant-types.js';
import type { GrantWrites } from './grant-writes.js';
import { failOnProblems, parseSeedDocuments } from './seed-import.js';

type ResolvedAgent = NonNullable<Awaited<ReturnType<typeof grantTargets.findAgent>>>;
type ResolvedCredential = NonNullable<Awaited<ReturnType<typeof grantTargets.findCredential>>>;

/**
 * Imports the seed article's policy document(s). Everything is checked first (agents, credentials,
 * scopes) and every problem reported at once; then all grants are created in one transaction, each
 * replacing the live grant of its agent × credential. Nothing is written when anything is wrong.
 */
export const createGrantImporter =
  ({
    db,
    audit,
    writes,
  }: {
    db: Kysely<Database>;
    audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
    writes: Pick<GrantWrites, 'newGrant' | 'insert'>;
  }) =>
  async (namespace: string, doc: unknown, terms: GrantTerms, ctx: AuditContext) => {
    const spec = { ctx, namespace, action: 'grant.import' as const, target: { type: 'grant', id: null } };
    return auditedChange({ db, audit }, spec, async (trx, record) => {
      assertNamespace(namespace);
      const ttlSeconds = grantLifetime(terms);
      const pairs = parseSeedDocuments(doc);
      const problems: string[] = [];
      const agents = new Map<string, ResolvedAgent | undefined>();
      const credentials = new Map<string, ResolvedCredential | undefined>();
      for (const pair of pairs) {
        if (!agents.has(pair.agent))
          agents.set(pair.agent, await grantTargets.findAgent(trx, namespace, pair.agent));
        if (!credentials.has(pair.credential)) {
          credentials.set(
            pair.credential,
            await grantTargets.findCredential(trx, namespace, pair.credential),
          );
        }
      }
      for (const [ref, agent] of agents) {
        if (!agent) problems.push(`no agent "${ref.slice(0, 64)}" in namespace "${namespace}"`);
      }
      for (const [name, credential] of credentials) {
        if (!credential) problems.push(`no credential "${name}" in namespace "${namespace}"`);
      }
      for (const pair of pairs) {
        const credential = credentials.get(pair.credential);
        if (!credential || pair.scopes === 'all') continue;
        const extra = scopesOutside(pair.scopes, credential.scopes);
        if (extra.length > 0) {
          problems.push(
            `credential "${credential.name}" has no scope ${extra.map((s) => `"${s.slice(0, 80)}"`).join(', ')} (it has ${credential.scopes.join(', ') || 'none'}), asked for in ${pair.sources.join(', ')}`,
          );
        }
      }
      failOnProblems(problems);

      // Group again by what the references resolve to: `agent-42` and its id are one agent.
      const resolved = new Map<
        string,
        { agent: ResolvedAgent; credential: ResolvedCredential; scopes: Set<string> }
      >();
      for (const pair of pairs) {
        const agent = agents.get(pair.agent) as ResolvedAgent;
        const credential = credentials.get(pair.credential) as ResolvedCredential;
        const key = `${agent.id}\u0000${credential.id}`;
        const entry = resolved.get(key) ?? { agent, credential, scopes: new Set<string>() };
        for (const scope of pair.scopes === 'all' ? credential.scopes : pair.scopes) entry.scopes.add(scope);
        resolved.set(key, entry);
      }
      const planned = [...resolved.values()].map(({ agent, credential, scopes }) => ({
        names: { agent: agent.name, credential: credential.name },
        grant: writes.newGrant(namespace, ctx, {
          agentId: agent.id,
          credentialId: credential.id,
          // In the credential's own order, so `slack` and `slack:read` read the same either way.
          scopes: credential.scopes.filter((scope) => scopes.has(scope)),
          reveal: terms.reveal ?? false,
          ttlSeconds,
        }),
      }));
      const replaced: string[] = [];
      for (const { grant, names } of planned)
        replaced.push(...(await writes.insert(trx, record, grant, names, 'import')));
      return {
        grants: planned.map(
          ({ grant, names }) =>
            // Brand new, at least an hour long: live.
            ({
              ...grant,
              agentName: names.agent,
              credentialName: names.credential,
              status: 'active',
            }) satisfies GrantRecord,
        ),
        replaced,
      };
    });
  };
