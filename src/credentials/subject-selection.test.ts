import { describe, expect, it } from 'vitest';
import { selectBySubject } from './subject-selection.js';

const shared = { id: 'shared', subject: null };
const alice = { id: 'alice', subject: 'alice' };
const bob = { id: 'bob', subject: 'bob' };
const agent = { fallbackToShared: true };
const admin = { fallbackToShared: false };

describe('selectBySubject', () => {
  it('picks the named user’s credential', () => {
    expect(selectBySubject([alice, bob, shared], 'bob', agent)).toEqual({ found: bob });
    expect(selectBySubject([alice, bob, shared], 'bob', admin)).toEqual({ found: bob });
  });

  it('falls back to the shared one for an agent, never for an admin command', () => {
    expect(selectBySubject([alice, shared], 'carol', agent)).toEqual({ found: shared });
    expect(selectBySubject([alice, shared], 'carol', admin)).toEqual({ found: undefined, ambiguous: false });
    expect(selectBySubject([alice], 'carol', agent)).toEqual({ found: undefined, ambiguous: false });
  });

  it('without a user: the shared one, else the only one, else ambiguous', () => {
    expect(selectBySubject([alice, bob, shared], undefined, agent)).toEqual({ found: shared });
    expect(selectBySubject([alice], undefined, agent)).toEqual({ found: alice });
    expect(selectBySubject([alice, bob], undefined, agent)).toEqual({ found: undefined, ambiguous: true });
    expect(selectBySubject([], undefined, admin)).toEqual({ found: undefined, ambiguous: false });
  });
});
