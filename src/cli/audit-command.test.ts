import { describe, expect, it } from 'vitest';
import { actorOf, targetOf } from './audit-command.js';

const agentId = '0190a5e2-7c4f-7000-8000-000000000042';

describe('audit list columns', () => {
  it("shows an agent's name beside its id, for the actor and for the target", () => {
    const event = {
      actor_type: 'agent' as const,
      actor_id: agentId,
      target_type: 'agent',
      target_id: agentId,
      details: { agent_id: agentId, agent_name: 'agent-42' },
    };
    expect(actorOf(event)).toBe(`agent:${agentId} (agent-42)`);
    expect(targetOf(event)).toBe(`agent:${agentId} (agent-42)`);
  });

  it('names nothing it cannot tie to the id shown', () => {
    const admin = { actor_type: 'admin' as const, actor_id: 'tok1', details: { agent_name: 'agent-42' } };
    expect(actorOf(admin)).toBe('admin:tok1');
    // A grant event names its agent in details, but the target is the grant.
    expect(
      targetOf({ target_type: 'grant', target_id: 'g1', details: { agent_id: agentId, agent_name: 'x' } }),
    ).toBe('grant:g1');
    // Filed against the name the caller used (a refusal): no repetition.
    expect(
      targetOf({
        target_type: 'agent',
        target_id: 'agent-42',
        details: { agent_id: 'agent-42', agent_name: 'agent-42' },
      }),
    ).toBe('agent:agent-42');
    expect(actorOf({ actor_type: 'anonymous' as const, actor_id: null, details: {} })).toBe('anonymous');
    expect(targetOf({ target_type: null, target_id: null, details: {} })).toBeNull();
  });
});
