import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { declaredCapabilities, requestDigest } from './modern-exchange.js';
import { honoredFilter } from './modern-listen.js';

const call = (params: Record<string, unknown>): JSONRPCRequest => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params,
});

describe('the 2026-07-28 leg’s pure parts', () => {
  it('binds a requestState to the method, the name or URI and the arguments, not to the retry fields', () => {
    const original = requestDigest(call({ name: 'deploy', arguments: { env: 'staging' } }));
    const retry = call({
      name: 'deploy',
      arguments: { env: 'staging' },
      inputResponses: { 'elicitation-1': { action: 'accept' } },
      requestState: 'opaque',
      _meta: { progressToken: 3 },
    });
    expect(requestDigest(retry)).toBe(original);
    expect(requestDigest(call({ name: 'deploy', arguments: { env: 'production' } }))).not.toBe(original);
    expect(requestDigest(call({ name: 'destroy', arguments: { env: 'staging' } }))).not.toBe(original);
    expect(
      requestDigest({ ...call({ name: 'deploy', arguments: { env: 'staging' } }), method: 'prompts/get' }),
    ).not.toBe(original);
  });

  it('reads the capabilities a request declares that the vault can serve an upstream with', () => {
    const declared = (capabilities: unknown) =>
      declaredCapabilities(call({ _meta: { 'io.modelcontextprotocol/clientCapabilities': capabilities } }));
    expect(declared({ sampling: {}, roots: { listChanged: true }, experimental: {} })).toEqual([
      'roots',
      'sampling',
    ]);
    expect(declared({ elicitation: { form: {} } })).toEqual(['elicitation']);
    expect(declared(undefined)).toEqual([]);
    expect(declared('sampling')).toEqual([]);
  });

  it('honours only the notifications the upstream can deliver', () => {
    const requested = {
      toolsListChanged: true,
      promptsListChanged: true,
      resourcesListChanged: false,
      resourceSubscriptions: ['file:///a', 7],
    };
    expect(
      honoredFilter(requested, {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
      }),
    ).toEqual({ toolsListChanged: true, resourceSubscriptions: ['file:///a'] });
    expect(honoredFilter(requested, { tools: {}, prompts: { listChanged: true } })).toEqual({
      promptsListChanged: true,
    });
    expect(honoredFilter('everything', { tools: { listChanged: true } })).toEqual({});
  });
});
