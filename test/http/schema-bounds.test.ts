import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';

type Schema = Record<string, unknown>;

/** Every number or integer in a request schema without both a lower and an upper bound, by path. */
const unboundedNumbers = (schema: unknown, path: string): string[] => {
  if (Array.isArray(schema)) return schema.flatMap((item, i) => unboundedNumbers(item, `${path}[${i}]`));
  if (!schema || typeof schema !== 'object') return [];
  const node = schema as Schema;
  const found: string[] = [];
  const types = ([] as unknown[]).concat(node.type ?? []);
  if (types.includes('integer') || types.includes('number')) {
    const low = node.minimum !== undefined || node.exclusiveMinimum !== undefined;
    const high = node.maximum !== undefined || node.exclusiveMaximum !== undefined;
    if (!low || !high) found.push(path);
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === 'example' || key === 'examples' || key === 'default') continue;
    found.push(...unboundedNumbers(value, `${path}.${key}`));
  }
  return found;
};

/**
 * Issue 10 finding 6: `ttl_seconds: 9007199254740991` reached the service and failed with a 500. Every
 * number a request may carry is bounded in its route's schema, so such input is a 400 at the edge.
 * The OpenAPI document is built from every route's schema (hidden routes take no input).
 */
describe('request schemas', () => {
  let t: TestVault;
  beforeAll(async () => {
    t = await startTestVault();
  });
  afterAll(() => t.stop());

  it('bound every integer and number that a request can carry', async () => {
    await t.vault.app.ready();
    const document = t.vault.app.swagger() as unknown as { paths: Record<string, Record<string, Schema>> };
    const problems: string[] = [];
    let operations = 0;
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        operations += 1;
        const where = `${method.toUpperCase()} ${path}`;
        problems.push(...unboundedNumbers(operation.parameters, `${where} parameters`));
        problems.push(...unboundedNumbers(operation.requestBody, `${where} body`));
      }
    }
    expect(operations).toBeGreaterThan(20);
    expect(problems).toEqual([]);
  });

  it('answers an out-of-range duration with 400, not 500', async () => {
    const response = await t.request('POST', '/v1/admin/tokens', {
      body: { name: 'huge', ttl_seconds: 9_007_199_254_740_991 },
    });
    expect(response.status, response.text).toBe(400);
    expect((response.body as { error: { code: string } }).error.code).toBe('invalid_request');
  });
});
