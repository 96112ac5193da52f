import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessClientOf, installClientInfo } from '../../src/http/client-info.js';
import { createCountryLookup } from '../../src/policy/country-lookup.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { tinyCountryMmdb } from '../helpers/tiny-mmdb.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  grant,
  onlyAuditEventOf,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';

/**
 * Issue 15: the client address is the socket's unless the request came through a trusted proxy
 * (`TOKENVAULT_TRUSTED_PROXIES`), and then `X-Forwarded-For` is read from the right, skipping trusted
 * hops. Shown through the real vault: the audit event's `client_ip` of a retrieval and of a failed
 * authentication, and the auth-failure limiter keyed by that address.
 */
describe('client address behind trusted proxies', () => {
  let t: TestVault;
  let agent: TestAgent;
  beforeAll(async () => {
    t = await startTestVault({ settings: { trustedProxies: '10.0.0.0/8, fd00::/8', authFailureLimit: '2' } });
    await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-client-address' } });
    agent = await addAgent(t, 'agent-42');
    await grant(t, { agent: 'agent-42', credential: 'slack', ttl: '1h', reveal: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const retrieveFrom = (remoteAddress: string, forwardedFor?: string, token = agent.apiKey) =>
    t.vault.app.inject({
      method: 'GET',
      url: '/v1/agents/agent-42/credentials/slack',
      remoteAddress,
      headers: {
        authorization: `Bearer ${token}`,
        ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }),
      },
    });

  it('ignores X-Forwarded-For from an untrusted peer: the audit shows the socket address', async () => {
    const response = await retrieveFrom('203.0.113.9', '198.51.100.7');
    expect(response.statusCode, response.body).toBe(200);
    expect((await onlyAuditEventOf(t, response)).client_ip).toBe('203.0.113.9');
  });

  it('uses a trusted proxy’s header, read from the right past every trusted hop', async () => {
    const viaOne = await retrieveFrom('10.0.0.5', '198.51.100.7');
    expect((await onlyAuditEventOf(t, viaOne)).client_ip).toBe('198.51.100.7');
    // What the client wrote itself (left of the first untrusted hop) is never believed.
    const spoofed = await retrieveFrom('10.0.0.5', '1.2.3.4, 198.51.100.7, 10.1.2.3');
    expect((await onlyAuditEventOf(t, spoofed)).client_ip).toBe('198.51.100.7');
    const mapped = await retrieveFrom('::ffff:10.0.0.5', '2001:db8::7, fd00::1');
    expect((await onlyAuditEventOf(t, mapped)).client_ip).toBe('2001:db8::7');
  });

  it('limits failed authentications by the client address, not by the proxy’s', async () => {
    const wrong = 'tv_agent_' + 'x'.repeat(43);
    // The limit is per token and address; the address as a whole may fail ten times as often.
    const failures = [];
    for (let i = 0; i < 3; i += 1)
      failures.push((await retrieveFrom('10.0.0.5', '198.51.100.20', wrong)).statusCode);
    expect(failures).toEqual([401, 401, 429]);
    const refused = await retrieveFrom('10.0.0.5', '198.51.100.20', wrong);
    expect((await onlyAuditEventOf(t, refused)).client_ip).toBe('198.51.100.20');
    // Another client behind the same proxy is not held back by that one's failures.
    expect((await retrieveFrom('10.0.0.5', '198.51.100.21', wrong)).statusCode).toBe(401);
  });
});

describe('country of the client', () => {
  let dir: TempDataDir;
  let t: TestVault;
  beforeAll(async () => {
    dir = await createTempDataDir();
    const file = join(dir.dir, 'operator-country.mmdb');
    // A file the test writes byte by byte: 8.8.8.0/24 is in Antarctica, nothing else is anywhere.
    writeFileSync(file, tinyCountryMmdb('8.8.8.0', 24, 'AQ'));
    t = await startTestVault({ settings: { geoipDatabase: file } });
  });
  afterAll(async () => {
    await t?.stop();
    await dir?.cleanup();
  });

  it('an operator MMDB file replaces the bundled database', () => {
    expect(createCountryLookup().countryOf('8.8.8.8')).toBe('US');
    expect(t.vault.services.countries.countryOf('8.8.8.8')).toBe('AQ');
    expect(t.vault.services.countries.countryOf('1.1.1.1')).toBeUndefined();
    expect(t.vault.services.countries.countryOf('127.0.0.1')).toBeUndefined();
  });

  it('a file that is not an MMDB database stops the vault at start, naming the setting', async () => {
    const file = join(dir.dir, 'not.mmdb');
    writeFileSync(file, 'not a database');
    const dataDir = join(dir.dir, 'refused-vault');
    await expect(startTestVault({ dataDir, settings: { geoipDatabase: file } })).rejects.toThrow(
      /TOKENVAULT_GEOIP_DATABASE .*not\.mmdb is not a readable MMDB file/,
    );
  });

  it('the decision’s client carries the country of the address after proxies, looked up once and only when read', async () => {
    const asked: string[] = [];
    const app = Fastify();
    installClientInfo(app, {
      trustedProxies: ['10.0.0.0/8'],
      countries: { countryOf: (ip) => (asked.push(ip), ip === '8.8.8.8' ? 'US' : undefined) },
    });
    app.get('/read', async (request) => {
      const client = accessClientOf(request);
      return { ip: client.ip, first: client.country, again: client.country };
    });
    app.get('/ignore', async (request) => ({ ip: accessClientOf(request).ip }));
    const read = await app.inject({
      url: '/read',
      remoteAddress: '10.0.0.5',
      headers: { 'x-forwarded-for': '8.8.8.8' },
    });
    expect(read.json()).toEqual({ ip: '8.8.8.8', first: 'US', again: 'US' });
    await app.inject({
      url: '/ignore',
      remoteAddress: '10.0.0.5',
      headers: { 'x-forwarded-for': '8.8.4.4' },
    });
    expect(asked).toEqual(['8.8.8.8']);
    await app.close();
  });
});
