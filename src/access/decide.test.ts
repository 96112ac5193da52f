import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AgentPrincipal } from '../agents/agent-types.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { AgentRequestDeps, PoliciesFor } from './agent-request.js';
import type { Grant } from '../grants/grant-types.js';
import type {
  AccessContext,
  AccessDecision,
  AllowedDecision,
  Channel,
  CredentialState,
  PolicyCheck,
} from './access-types.js';
import { decide } from './decide.js';
import { hoursFromNow, testGrant, testNow } from '../../test/helpers/grants.js';

const now = testNow;
const grant = testGrant;

const agent: AgentPrincipal = {
  agentId: 'a1',
  agentName: 'agent-42',
  namespace: 'default',
  method: 'api_key',
  credentialRef: 'k1',
};
const active: CredentialState = { id: 'c1', status: 'active', expiresAt: null };

const context = (over: Partial<AccessContext> = {}): AccessContext => ({
  namespace: 'default',
  agent,
  service: 'slack',
  credential: active,
  grants: [grant()],
  requestedScopes: [],
  channel: 'reveal',
  client: { ip: '203.0.113.7', userAgent: 'agent/1' },
  now,
  attributes: {},
  policies: [],
  ...over,
});

/** The retrieval decision as it was before the channel existed: the reveal channel. */
const reveal = (grants: Grant[], requestedScopes: string[] = [], credential = active) =>
  decide(context({ grants, requestedScopes, credential }));

describe('decide: the grant, then the credential, then the channel', () => {
  it('answers the same for no grant and no credential, so existence does not leak', () => {
    expect(reveal([])).toEqual({ outcome: 'deny', code: 'credential_not_granted' });
    expect(decide(context({ credential: undefined }))).toEqual({
      outcome: 'deny',
      code: 'credential_not_granted',
    });
  });

  it('allows a live reveal grant with its scopes, narrowed to those asked for', () => {
    expect(reveal([grant()])).toMatchObject({
      outcome: 'allow',
      scopes: ['read', 'write'],
      namespace: 'default',
      agentId: 'a1',
      credentialId: 'c1',
      channel: 'reveal',
    });
    expect(reveal([grant()], ['read'])).toMatchObject({ outcome: 'allow', scopes: ['read'] });
  });

  it('refuses a scope the grant does not give, naming it', () => {
    const refused = reveal([grant({ scopes: ['read'] })], ['read', 'write']);
    expect(refused).toMatchObject({ outcome: 'deny', code: 'scope_not_granted' });
    expect(refused.outcome === 'deny' && refused.message).toContain('"write"');
  });

  it('says expired or revoked by the newest grant', () => {
    expect(reveal([grant({ expiresAt: hoursFromNow(-1) })])).toMatchObject({ code: 'grant_expired' });
    expect(reveal([grant({ revokedAt: hoursFromNow(-1) })])).toMatchObject({ code: 'grant_revoked' });
    const older = grant({ id: 'old', revokedAt: hoursFromNow(-2), createdAt: '2026-05-01T00:00:00.000Z' });
    const newer = grant({ id: 'new', expiresAt: hoursFromNow(-1) });
    expect(reveal([older, newer])).toMatchObject({ code: 'grant_expired', grant: { id: 'new' } });
  });

  it('checks the grant before the credential, and the credential before reveal', () => {
    const needsReauth = { ...active, status: 'needs_reauth' };
    expect(reveal([grant({ revokedAt: hoursFromNow(-1) })], [], needsReauth)).toMatchObject({
      code: 'grant_revoked',
    });
    expect(reveal([grant({ reveal: false })], [], needsReauth)).toMatchObject({
      code: 'credential_needs_reauth',
    });
    expect(reveal([grant()], [], { ...active, status: 'revoked' })).toMatchObject({
      code: 'credential_revoked',
    });
    expect(reveal([grant()], [], { ...active, expiresAt: hoursFromNow(-1) })).toMatchObject({
      code: 'credential_expired',
    });
    expect(reveal([grant({ reveal: false })])).toMatchObject({ code: 'reveal_not_granted' });
  });

  it('expires at the earlier of the grant and the credential', () => {
    expect(
      reveal([grant({ expiresAt: hoursFromNow(5) })], [], { ...active, expiresAt: hoursFromNow(2) }),
    ).toMatchObject({ expiresAt: hoursFromNow(2) });
    expect(reveal([grant({ expiresAt: null })])).toMatchObject({ expiresAt: null });
  });

  it('prefers a reveal grant that covers the scopes when several are live', () => {
    const proxyOnly = grant({ id: 'p', reveal: false, scopes: ['read', 'write'] });
    const narrow = grant({ id: 'r', reveal: true, scopes: ['read'] });
    expect(reveal([proxyOnly, narrow], ['read'])).toMatchObject({ outcome: 'allow', grant: { id: 'r' } });
    expect(reveal([proxyOnly, narrow], ['write'])).toMatchObject({ code: 'reveal_not_granted' });
  });
});

describe('decide: the reveal rule belongs to the channel', () => {
  const proxyOnly = grant({ reveal: false });

  it.each<[Channel, string]>([
    ['reveal', 'deny'],
    ['proxy', 'allow'],
    ['mcp', 'allow'],
  ])('a proxy-only grant on the %s channel: %s', (channel, outcome) => {
    const decision = decide(context({ grants: [proxyOnly], channel }));
    expect(decision.outcome).toBe(outcome);
    if (decision.outcome === 'deny') expect(decision.code).toBe('reveal_not_granted');
    if (decision.outcome === 'allow') expect(decision.channel).toBe(channel);
  });

  it('refuses the proxies what it refuses reveal for any other reason', () => {
    for (const channel of ['proxy', 'mcp'] as const) {
      expect(decide(context({ grants: [grant({ revokedAt: hoursFromNow(-1) })], channel }))).toMatchObject({
        code: 'grant_revoked',
      });
      expect(
        decide(context({ grants: [proxyOnly], channel, credential: { ...active, status: 'revoked' } })),
      ).toMatchObject({ code: 'credential_revoked' });
    }
  });
});

describe('decide: policy checks after the grant', () => {
  const seen: string[] = [];
  const check = (rule: string, verdict: ReturnType<PolicyCheck['evaluate']>): PolicyCheck => ({
    policy: 'business-hours',
    rule,
    evaluate: (ctx, g) => {
      seen.push(`${rule}:${g.id}:${ctx.client.ip}`);
      return verdict;
    },
  });

  it('runs every check on the chosen grant and allows when all pass', () => {
    seen.length = 0;
    const decision = decide(
      context({ policies: [check('time_window', { outcome: 'pass' }), check('ip', { outcome: 'pass' })] }),
    );
    expect(decision.outcome).toBe('allow');
    expect(seen).toEqual(['time_window:g1:203.0.113.7', 'ip:g1:203.0.113.7']);
  });

  it('refuses with the first failing rule named, and checks nothing after it', () => {
    seen.length = 0;
    const decision = decide(
      context({
        policies: [
          check('time_window', {
            outcome: 'deny',
            code: 'scope_not_granted',
            message: 'outside office hours',
          }),
          check('ip', { outcome: 'pass' }),
        ],
      }),
    );
    expect(decision).toMatchObject({
      outcome: 'deny',
      code: 'scope_not_granted',
      message: 'outside office hours',
      rule: { policy: 'business-hours', rule: 'time_window' },
      grant: { id: 'g1' },
    });
    expect(seen).toEqual(['time_window:g1:203.0.113.7']);
  });

  it('does not consult a policy when the grant already refuses', () => {
    seen.length = 0;
    expect(decide(context({ grants: [], policies: [check('ip', { outcome: 'pass' })] }))).toMatchObject({
      code: 'credential_not_granted',
    });
    expect(seen).toEqual([]);
  });

  it('passes a pending approval on as the outcome', () => {
    const approval = { policy: 'prod', rule: 'approval', approvalId: 'ap1', retryAfter: 5 };
    expect(decide(context({ policies: [check('approval', { outcome: 'pending', approval })] }))).toEqual({
      outcome: 'pending',
      approval,
      grant: grant(),
    });
  });
});

describe('a credential use without a decision does not compile', () => {
  it('an agent request path cannot be built without the policies of the path', () => {
    // Required, not optional: a new channel built on createAgentRequests must pass them (the rest of
    // this guarantee, from the source and the running vault: test/access/decision-point.test.ts).
    expectTypeOf<AgentRequestDeps['policiesFor']>().toEqualTypeOf<PoliciesFor>();
    expectTypeOf<undefined>().not.toMatchTypeOf<AgentRequestDeps['policiesFor']>();
  });

  it('reading a secret for an agent takes an AllowedDecision, which only decide() makes', () => {
    type ReadCurrentSecret = CredentialService['readCurrentSecret'];
    expectTypeOf<Parameters<ReadCurrentSecret>[0]>().toEqualTypeOf<AllowedDecision>();
    expectTypeOf<AccessDecision>().not.toMatchTypeOf<AllowedDecision>();

    const decision = decide(context());
    if (decision.outcome !== 'allow') throw new Error('expected an allow');
    expectTypeOf(decision).toEqualTypeOf<AllowedDecision>();

    const { outcome, namespace, agentId, credentialId, channel, grant: g, scopes, expiresAt } = decision;
    const lookalike = { outcome, namespace, agentId, credentialId, channel, grant: g, scopes, expiresAt };
    // @ts-expect-error the same fields, without having been through decide(): refused
    const forged: AllowedDecision = lookalike;
    // @ts-expect-error an id and a namespace are not a decision either
    const bare: AllowedDecision = { namespace: 'default', credentialId: 'c1' };
    expect([forged, bare]).toHaveLength(2);
  });
});
