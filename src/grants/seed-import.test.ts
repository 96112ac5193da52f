import { describe, expect, it } from 'vitest';
import type { VaultError } from '../errors/vault-error.js';
import { parseSeedDocuments } from './seed-import.js';

const refusal = (doc: unknown) => {
  try {
    parseSeedDocuments(doc);
  } catch (error) {
    return error as VaultError;
  }
  throw new Error('expected invalid_import');
};

describe('parseSeedDocuments', () => {
  it('reads the seed article’s document: one grant per agent × credential', () => {
    const pairs = parseSeedDocuments({
      agent_id: 'agent-42',
      allowed_credentials: ['slack:read', 'calendar:events.readonly'],
    });
    expect(pairs.map(({ agent, credential, scopes }) => ({ agent, credential, scopes }))).toEqual([
      { agent: 'agent-42', credential: 'slack', scopes: ['read'] },
      { agent: 'agent-42', credential: 'calendar', scopes: ['events.readonly'] },
    ]);
  });

  it('groups scopes of one pair, across documents of a list; a bare name means all scopes', () => {
    const pairs = parseSeedDocuments([
      { agent_id: 'agent-42', allowed_credentials: ['slack:read', 'slack:chat:write', 'github'] },
      { agent_id: 'agent-42', allowed_credentials: ['slack:read', 'github:repo'] },
      { agent_id: 'agent-7', allowed_credentials: ['slack'] },
    ]);
    expect(pairs.map(({ agent, credential, scopes }) => ({ agent, credential, scopes }))).toEqual([
      { agent: 'agent-42', credential: 'slack', scopes: ['read', 'chat:write'] },
      { agent: 'agent-42', credential: 'github', scopes: 'all' },
      { agent: 'agent-7', credential: 'slack', scopes: 'all' },
    ]);
  });

  it('reports every problem at once, each with where it is', () => {
    const error = refusal([
      { agent_id: 'agent-42', allowed_credentials: ['slack:', 'Bad Name', 7] },
      { agent: 'x' },
      'nope',
    ]);
    expect(error.code).toBe('invalid_import');
    expect(error.message).toMatch(/^Nothing was imported: /);
    expect(error.message).toContain(
      'document 1, allowed_credentials[0] ("slack:") has an empty or invalid scope',
    );
    expect(error.message).toContain(
      'document 1, allowed_credentials[1] ("Bad Name") does not start with a credential name',
    );
    expect(error.message).toContain('document 1, allowed_credentials[2] is not a string');
    expect(error.message).toContain('document 2 has unknown field "agent"');
    expect(error.message).toContain('document 2 needs "agent_id"');
    expect(error.message).toContain('document 3 is not an object');
  });

  it('refuses an empty list and a non-object', () => {
    expect(refusal([]).message).toContain('the list holds no documents');
    expect(refusal(null).message).toContain('the document is not an object');
  });
});
