import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { call, startUpstream } from '../proxy/proxy-upstream.js';
import { addAgent, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { attach, createPolicy, detach, retrieveFrom } from '../policies/policy-fixtures.js';

/**
 * Issue 15 item 2: no path uses a credential without the one decision, grants and policies both.
 * `decide.test.ts` proves a secret cannot be read without an AllowedDecision (a type); this file
 * proves the rest from the source and from the running vault:
 *
 * - only the agent request path (src/access/agent-request.ts) reads a secret for an agent, and it
 *   decides with the policies of the path (`policiesFor` is a required dependency);
 * - every agent route module uses only services built on that path with their policies passed;
 * - on every agent channel registered today, an attached policy refuses the request before the
 *   credential is used.
 *
 * A new channel (an MCP tool, a proxy) that reads a secret some other way, or is built without its
 * policies, fails here; one built on `createAgentRequests` with `policiesFor` passes unchanged.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
const sources = new Map(
  sourceFiles(join(root, 'src')).map((file) => [file, readFileSync(join(root, file), 'utf8')]),
);
const filesMatching = (pattern: RegExp) =>
  [...sources]
    .filter(([, text]) => pattern.test(text))
    .map(([file]) => file)
    .sort();

describe('the decision point, from the source', () => {
  it('reads a secret for an agent only on the agent request path', () => {
    // The other two read the secret again after an OAuth refresh, with the decision the path made
    // (`use.allowed`): the refreshed version of the credential that decision allowed, nothing else.
    expect(filesMatching(/\.readCurrentSecret\(/)).toEqual([
      'src/access/agent-request.ts',
      'src/oauth/refresh/token-freshness.ts',
      'src/proxy/proxy-service.ts',
    ]);
    for (const file of ['src/oauth/refresh/token-freshness.ts', 'src/proxy/proxy-service.ts']) {
      for (const [, argument] of sources.get(file)!.matchAll(/\.readCurrentSecret\(([^)]*)\)/g)) {
        expect(argument, file).toMatch(/^(use\.)?allowed$/);
      }
    }
    // The admin-side read (by name, no decision) is for in-process tooling and tests: no module uses it.
    expect(filesMatching(/\.readSecret\(/)).toEqual([]);
  });

  it('decides only on the agent request path, and in the dry run, which reads no secret', () => {
    const deciders = filesMatching(/\bdecide\(\{/);
    expect(deciders).toEqual(['src/access/agent-request.ts', 'src/policy/policy-dry-run.ts']);
    expect(sources.get('src/policy/policy-dry-run.ts')).not.toMatch(
      /readCurrentSecret|readSecret|credentials\./,
    );
  });

  it('builds every agent route module’s services on that path with their policies', () => {
    const services = sources.get('src/services.ts')!;
    const agentRoutes = filesMatching(/authenticateAgent\(/).filter((file) =>
      file.startsWith('src/http/routes/'),
    );
    expect(agentRoutes.length).toBeGreaterThanOrEqual(2);
    for (const file of agentRoutes) {
      const picked = /Pick<VaultServices,\s*([^>]+)>/.exec(sources.get(file)!)?.[1];
      expect(picked, `${file} takes its services as a Pick<VaultServices, …>`).toBeDefined();
      for (const name of picked!.match(/'(\w+)'/g)!.map((quoted) => quoted.slice(1, -1))) {
        // The agent's long-poll on its own approval reads approval rows, never a credential.
        if (name === 'approvals') {
          expect(sources.get('src/approvals/approval-service.ts')).not.toMatch(
            /credentials|readCurrentSecret/,
          );
          continue;
        }
        expect(name, `${file} must not take the credential service (it reads secrets undecided)`).not.toBe(
          'credentials',
        );
        const args = new RegExp(`^\\s*${name}: create\\w+\\(\\{([^}]*)\\}`, 'm').exec(services)?.[1];
        expect(args, `${file} uses "${name}", which services.ts must build`).toBeDefined();
        if (/\bpoliciesFor\b/.test(args!)) continue;
        // Built over other services instead (the vault's MCP tools over retrieval and the proxy): only
        // those, never the credential service, so every secret it hands out went through their path.
        expect(args, `${file} uses "${name}", which services.ts must build with policiesFor`).toMatch(
          /\bdomain\.\w+/,
        );
        expect(args, `"${name}" must not be built over the credential service`).not.toMatch(
          /\bcredentials\b/,
        );
        for (const [, inner] of args!.matchAll(/\bdomain\.(\w+)/g)) {
          expect(picked, `${file} reaches "${inner}" through "${name}"`).toBeDefined();
          expect(inner).not.toBe('credentials');
        }
      }
    }
  });

  it('gives every service built on createAgentRequests its policies (a required dependency)', () => {
    const agentRequest = sources.get('src/access/agent-request.ts')!;
    expect(agentRequest).toMatch(/^\s*policiesFor: PoliciesFor;$/m);
    for (const file of filesMatching(/createAgentRequests\(/)) {
      if (file === 'src/access/agent-request.ts') continue;
      expect(sources.get(file), file).toMatch(/createAgentRequests\(deps\)/);
    }
  });
});

describe('the decision point, on every agent channel of the running vault', () => {
  let t: TestVault;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: URL;
  let agent: TestAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await startTestVault();
    base = new URL(await t.vault.listen());
    agent = await addAgent(t, 'agent-d');
    const created = await t.request('POST', '/v1/admin/credentials', {
      body: {
        name: 'both',
        type: 'api_key',
        secret: { api_key: 'decision-point-secret' },
        base_url: `http://${upstream.host}/api`,
        allowed_hosts: [upstream.host],
      },
    });
    expect(created.status, created.text).toBe(201);
    await grant(t, { agent: 'agent-d', credential: 'both', until_revoked: true, reveal: true });
    await createPolicy(t, 'name: nowhere\nrules:\n  - ip_allowlist: { cidrs: [192.0.2.1/32] }\n');
  });
  afterAll(async () => {
    await t?.stop();
    await upstream?.close();
  });

  const proxied = () =>
    call(base, 'GET', '/v1/proxy/both/echo', { headers: { authorization: `Bearer ${agent.apiKey}` } });

  it('retrieval and the HTTP proxy both refuse once a policy refuses, and the upstream is never called', async () => {
    expect((await retrieveFrom(t, agent, 'both')).status).toBe(200);
    expect((await proxied()).status).toBe(200);

    await attach(t, 'nowhere', 'credential', 'both');
    const seen = upstream.seen.length;
    const retrieval = await retrieveFrom(t, agent, 'both');
    expect([retrieval.status, retrieval.body.error?.code]).toEqual([403, 'policy_denied']);
    const proxy = await proxied();
    expect(proxy.status).toBe(403);
    expect(proxy.text).toContain('policy_denied');
    expect(proxy.text).toContain('Refused by policy \\"nowhere\\", rule 0 (ip_allowlist)');
    expect(upstream.seen.length).toBe(seen);

    await detach(t, 'nowhere', 'credential', 'both');
    expect((await proxied()).status).toBe(200);
  });
});
