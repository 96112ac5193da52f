import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { VaultError } from '../errors/vault-error.js';
import { grantTargets } from '../grants/grant-repo.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import { type CounterWindow, windowOf } from './counters.js';
import { type Db, policyRepo, type StoredPolicy } from './policy-repo.js';
import type { RateLimitRule, Rule, UsageCapRule } from './policy-types.js';
import { counterLimitOf } from './rule-checks.js';
import type { StoreCounters } from './store-counters.js';

export interface PolicyUsageDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  counters: Pick<StoreCounters, 'usage' | 'resetIn'>;
}

/** Whose uses one counter counts, read back from its key (rule-checks.ts `counterRequirement`). */
export interface CounterSubject {
  agent: { id: string; name: string | null } | null;
  credential: { id: string; name: string | null } | null;
  /** A counter keyed per attachment to a key, grant, proxy or proxy key. */
  attachment: { kind: string; id: string } | null;
}

export interface UsageLine extends CounterSubject {
  rule: { index: number; kind: Rule['kind'] | null };
  window: CounterWindow;
  limit: number;
  used: number;
  remaining: number;
  resetAt: Date | null;
  /** False for a counting rule nothing has been counted against yet (all of it left). */
  counted: boolean;
}

export interface PolicyUsage {
  policy: Pick<StoredPolicy, 'id' | 'name' | 'version'>;
  at: Date;
  lines: UsageLine[];
}

export interface ResetFilter {
  rule?: number | undefined;
  /** An agent's id or name. */
  agent?: string | undefined;
  /** A credential's name. */
  credential?: string | undefined;
}

const isCounting = (rule: Rule | undefined): rule is RateLimitRule | UsageCapRule =>
  rule?.kind === 'rate_limit' || rule?.kind === 'usage_cap';

/** `policy=<id>&rule=<i>&<scope>`: the rule index and the ids the scope names. */
const parseKey = (key: string) => {
  const params = new URLSearchParams(key);
  const scope = [...params].filter(([name]) => name !== 'policy' && name !== 'rule');
  const agent = params.get('agent');
  const credential = params.get('credential');
  const other = scope.find(([name]) => name !== 'agent' && name !== 'credential');
  return {
    rule: Number(params.get('rule')),
    agent,
    credential,
    attachment: other ? { kind: other[0], id: other[1] } : null,
  };
};

const prefixOf = (policyId: string, rule?: number) =>
  `policy=${policyId}&rule=${rule === undefined ? '' : `${rule}&`}`;

/**
 * `policy usage` and its admin reset (issue 15, usage_cap). Usage reads the counters of one policy
 * and names whose they are; the reset forgets counts, audited in the same transaction. Counter rows
 * have no access trigger (migration 0011), so a reset never moves the access generation: it lets the
 * next request be counted afresh, it does not change who may do what.
 */
export const createPolicyUsage = ({ db, clock, audit, counters }: PolicyUsageDeps) => {
  const policyOrFail = async (q: Db, namespace: string, name: string) => {
    assertNamespace(namespace);
    const found = await policyRepo.findByName(q, namespace, name);
    if (!found) {
      throw new VaultError(
        'policy_not_found',
        `No policy named "${name.slice(0, 64)}" in namespace "${namespace}".`,
      );
    }
    return found;
  };

  /** Names for the ids keys carry; an id whose row is gone (or a credential counted by name) stays as it is. */
  const namesOf = async (namespace: string, table: 'agents' | 'credentials', ids: string[]) => {
    if (ids.length === 0) return new Map<string, string>();
    const rows = await db
      .selectFrom(table)
      .select(['id', 'name'])
      .where('namespace', '=', namespace)
      .where('id', 'in', ids)
      .execute();
    return new Map(rows.map((row) => [row.id, row.name]));
  };

  return {
    async usage(namespace: string, name: string): Promise<PolicyUsage> {
      const policy = await policyOrFail(db, namespace, name);
      const at = clock.now();
      const counted = (await counters.usage(prefixOf(policy.id), at)).map((line) => ({
        line,
        parsed: parseKey(line.key),
      }));
      const unique = (values: (string | null)[]) => [
        ...new Set(values.filter((v): v is string => v !== null)),
      ];
      const agents = await namesOf(namespace, 'agents', unique(counted.map((c) => c.parsed.agent)));
      const credentials = await namesOf(
        namespace,
        'credentials',
        unique(counted.map((c) => c.parsed.credential)),
      );
      const lines: UsageLine[] = counted.map(({ line, parsed }) => {
        // A counter remembers the limit it was last counted against; an edit of the limit (same
        // window) decides the next request, so it is what is left against now.
        const rule = policy.policy.rules[parsed.rule];
        const current = isCounting(rule) ? counterLimitOf(rule) : undefined;
        const limit =
          current && JSON.stringify(current.window) === JSON.stringify(line.window)
            ? current.limit
            : line.limit;
        return {
          rule: { index: parsed.rule, kind: rule?.kind ?? null },
          agent: parsed.agent === null ? null : { id: parsed.agent, name: agents.get(parsed.agent) ?? null },
          credential:
            parsed.credential === null
              ? null
              : { id: parsed.credential, name: credentials.get(parsed.credential) ?? null },
          attachment: parsed.attachment,
          window: line.window,
          limit,
          used: line.used,
          remaining: Math.max(0, limit - line.used),
          resetAt: line.resetAt,
          counted: true,
        };
      });
      // A counting rule with no count yet has all of its limit left, for everyone it counts.
      policy.policy.rules.forEach((rule, index) => {
        if (!isCounting(rule) || lines.some((line) => line.rule.index === index)) return;
        const { window, limit } = counterLimitOf(rule);
        lines.push({
          rule: { index, kind: rule.kind },
          agent: null,
          credential: null,
          attachment: null,
          window,
          limit,
          used: 0,
          remaining: limit,
          resetAt: window.kind === 'sliding' ? null : windowOf(window, at).resetAt,
          counted: false,
        });
      });
      lines.sort((a, b) => a.rule.index - b.rule.index);
      return { policy: { id: policy.id, name: policy.name, version: policy.version }, at, lines };
    },

    /** Forgets the counts of a policy: all of them, or one rule's, an agent's, a credential's. */
    reset: (namespace: string, name: string, filter: ResetFilter, ctx: AuditContext) =>
      auditedChange(
        { db, audit },
        {
          ctx,
          namespace,
          action: 'policy.usage_reset',
          target: { type: 'policy', id: name.slice(0, 200) },
          details: {
            ...(filter.rule === undefined ? {} : { rule: filter.rule }),
            ...(filter.agent === undefined ? {} : { agent_ref: filter.agent.slice(0, 200) }),
            ...(filter.credential === undefined ? {} : { credential_ref: filter.credential.slice(0, 200) }),
          },
        },
        async (trx, record) => {
          const policy = await policyOrFail(trx, namespace, name);
          if (filter.rule !== undefined && !isCounting(policy.policy.rules[filter.rule])) {
            throw new VaultError(
              'invalid_request',
              `rule: policy "${policy.name}" has no rate_limit or usage_cap at rules[${filter.rule}].`,
            );
          }
          const facts: AuditDetails = {
            policy_id: policy.id,
            policy_name: policy.name,
            version: policy.version,
          };
          let agentId: string | undefined;
          if (filter.agent !== undefined) {
            const agent = await grantTargets.findAgent(trx, namespace, filter.agent);
            if (!agent)
              throw new VaultError(
                'agent_not_found',
                `No agent "${filter.agent.slice(0, 64)}" (id or name).`,
              );
            agentId = agent.id;
            Object.assign(facts, { agent_id: agent.id, agent_name: agent.name });
          }
          let credentialIds: string[] | undefined;
          if (filter.credential !== undefined) {
            const credential = await grantTargets.findCredential(trx, namespace, filter.credential);
            if (!credential) {
              throw new VaultError(
                'credential_not_found',
                `No credential named "${filter.credential.slice(0, 64)}".`,
              );
            }
            // A request for a credential that did not resolve was counted under the name it asked for.
            credentialIds = [credential.id, credential.name];
            Object.assign(facts, { credential_id: credential.id, credential_name: credential.name });
          }
          const keys = await counters.resetIn(trx, prefixOf(policy.id, filter.rule), (key) => {
            const parsed = parseKey(key);
            if (agentId !== undefined && parsed.agent !== agentId) return false;
            return (
              credentialIds === undefined ||
              (parsed.credential !== null && credentialIds.includes(parsed.credential))
            );
          });
          await record({ details: { ...facts, counters_reset: keys.length } });
          return { policy: policy.name, reset: keys.length, at: clock.now() };
        },
      ),
  };
};

export type PolicyUsageService = ReturnType<typeof createPolicyUsage>;
