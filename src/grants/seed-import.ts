import { VaultError } from '../errors/vault-error.js';

/**
 * The seed article's policy document, `{"agent_id":"agent-42","allowed_credentials":["slack:read",
 * "calendar:events.readonly"]}`, or a list of them. Each entry is `credential:scope` (the scope may
 * itself hold colons, as in `slack:chat:write`: credential names cannot) or a bare `credential`, which
 * means all of its scopes. Entries are grouped into one grant per agent × credential.
 */
export interface ImportPair {
  agent: string;
  credential: string;
  /** 'all': every scope the credential has. */
  scopes: string[] | 'all';
  /** Where in the document the pair came from, for messages. */
  sources: string[];
}

const maxDocuments = 1000;
const maxEntries = 1000;
const maxProblems = 10;
const credentialPattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const knownKeys = new Set(['agent_id', 'allowed_credentials']);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses and groups the document, reporting every problem at once; nothing is looked up here. */
export const parseSeedDocuments = (doc: unknown): ImportPair[] => {
  const problems: string[] = [];
  const documents = Array.isArray(doc) ? doc : [doc];
  const label = (i: number) => (Array.isArray(doc) ? `document ${i + 1}` : 'the document');

  if (Array.isArray(doc) && doc.length === 0) problems.push('the list holds no documents');
  if (documents.length > maxDocuments) problems.push(`at most ${maxDocuments} documents at a time`);

  const pairs = new Map<string, ImportPair>();
  documents.slice(0, maxDocuments).forEach((document, i) => {
    if (!isObject(document)) {
      problems.push(`${label(i)} is not an object like {"agent_id": "...", "allowed_credentials": [...]}`);
      return;
    }
    const unknown = Object.keys(document).filter((key) => !knownKeys.has(key));
    if (unknown.length > 0) {
      problems.push(
        `${label(i)} has unknown field ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')} (only agent_id and allowed_credentials)`,
      );
    }
    const agent = document.agent_id;
    if (typeof agent !== 'string' || agent.length === 0 || agent.length > 200) {
      problems.push(`${label(i)} needs "agent_id": the agent's id or name`);
    }
    const entries = document.allowed_credentials;
    if (!Array.isArray(entries)) {
      problems.push(`${label(i)} needs "allowed_credentials": a list like ["slack:read", "github"]`);
      return;
    }
    if (entries.length > maxEntries) problems.push(`${label(i)} lists more than ${maxEntries} credentials`);
    entries.slice(0, maxEntries).forEach((entry, j) => {
      const where = `${label(i)}, allowed_credentials[${j}]`;
      if (typeof entry !== 'string') {
        problems.push(`${where} is not a string like "slack:read"`);
        return;
      }
      const colon = entry.indexOf(':');
      const credential = colon === -1 ? entry : entry.slice(0, colon);
      const scope = colon === -1 ? undefined : entry.slice(colon + 1);
      if (!credentialPattern.test(credential)) {
        problems.push(`${where} ("${entry.slice(0, 80)}") does not start with a credential name`);
        return;
      }
      if (scope !== undefined && (scope.length === 0 || scope.length > 256 || /\s/.test(scope))) {
        problems.push(`${where} ("${entry.slice(0, 80)}") has an empty or invalid scope after the colon`);
        return;
      }
      if (typeof agent !== 'string' || agent.length === 0) return;
      const key = `${agent}\u0000${credential}`;
      const pair = pairs.get(key) ?? { agent, credential, scopes: [], sources: [] };
      pair.sources.push(`${where} ("${entry}")`);
      if (scope === undefined) pair.scopes = 'all';
      else if (pair.scopes !== 'all' && !pair.scopes.includes(scope)) pair.scopes.push(scope);
      pairs.set(key, pair);
    });
  });

  failOnProblems(problems);
  return [...pairs.values()];
};

/** Throws one invalid_import naming every problem (the first few, and how many more). */
export const failOnProblems = (problems: string[]): void => {
  if (problems.length === 0) return;
  const shown = problems.slice(0, maxProblems).join('; ');
  const more = problems.length > maxProblems ? `; and ${problems.length - maxProblems} more` : '';
  throw new VaultError('invalid_import', `Nothing was imported: ${shown}${more}.`);
};
