import { describe, expect, it } from 'vitest';
import { fixedClock } from '../lib/clock.js';
import { checkFetchUrl, createRemoteKeySets } from './remote-keys.js';

describe('URLs the vault fetches keys from', () => {
  it('are https, or http on loopback only, with no credentials or fragment', () => {
    expect(checkFetchUrl('https://token.actions.githubusercontent.com', 'issuer URL')).toBe(
      'https://token.actions.githubusercontent.com',
    );
    expect(() => checkFetchUrl('http://127.0.0.1:8080/jwks', 'JWKS URL')).not.toThrow();
    expect(() => checkFetchUrl('http://localhost:8080/jwks', 'JWKS URL')).not.toThrow();
    expect(() => checkFetchUrl('http://169.254.169.254/latest/meta-data', 'JWKS URL')).toThrow(/https/);
    expect(() => checkFetchUrl('http://issuer.example.com', 'issuer URL')).toThrow(/https/);
    expect(() => checkFetchUrl('https://user:pw@issuer.example.com', 'issuer URL')).toThrow(
      /user name or password/,
    );
    expect(() => checkFetchUrl('https://issuer.example.com/#x', 'issuer URL')).toThrow(/fragment/);
    expect(() => checkFetchUrl('https://issuer.example.com/?a=b', 'issuer URL', { query: false })).toThrow(
      /query/,
    );
    expect(() => checkFetchUrl('gopher://issuer.example.com', 'issuer URL')).toThrow(/https/);
    expect(() => checkFetchUrl('not a url', 'issuer URL')).toThrow(/not a valid URL/);
  });
});

/** A fetch that answers from a table, typed as the real one: the module's only seam to the network. */
const fakeFetch = (answers: Record<string, { status?: number; body: string }>): typeof fetch =>
  (async (input: string | URL | Request) => {
    const answer = answers[String(input)];
    if (!answer) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    return new Response(answer.body, { status: answer.status ?? 200 });
  }) as typeof fetch;

describe('OIDC discovery', () => {
  const issuer = 'https://issuer.example.com';
  const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
  const discover = (answers: Parameters<typeof fakeFetch>[0]) =>
    createRemoteKeySets({ clock: fixedClock('2026-06-01T00:00:00Z'), fetch: fakeFetch(answers) }).discover(
      issuer,
    );

  it('returns the jwks_uri of a document that names the issuer', async () => {
    await expect(
      discover({ [discoveryUrl]: { body: JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }) } }),
    ).resolves.toEqual({ issuer, jwksUri: `${issuer}/keys` });
  });

  it('refuses a document for another issuer, a plain-http jwks_uri, a failure or no answer', async () => {
    const cases: [Parameters<typeof fakeFetch>[0], RegExp][] = [
      [
        {
          [discoveryUrl]: {
            body: JSON.stringify({ issuer: 'https://evil.example', jwks_uri: `${issuer}/k` }),
          },
        },
        /names issuer/,
      ],
      [{ [discoveryUrl]: { body: JSON.stringify({ issuer, jwks_uri: 'http://10.0.0.1/keys' }) } }, /https/],
      [{ [discoveryUrl]: { body: JSON.stringify({ issuer }) } }, /no jwks_uri/],
      [{ [discoveryUrl]: { status: 404, body: '' } }, /answered 404/],
      [{ [discoveryUrl]: { body: '<html>' } }, /not JSON/],
      [{}, /cannot connect \(ECONNREFUSED\)/],
    ];
    for (const [answers, message] of cases) {
      await expect(discover(answers)).rejects.toMatchObject({ code: 'issuer_unreachable', message });
    }
  });
});
