import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { settings } from './config-schema.js';

describe('configuration reference', () => {
  it('lists every setting in the README with its flag, variable and default', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const spec of Object.values(settings)) {
      const row = readme.split('\n').find((line) => line.includes(`\`${spec.env}\``) && line.startsWith('|'));
      expect(row, `README has no row for ${spec.env}`).toBeDefined();
      expect(row).toContain(`\`${spec.flag}\``);
      if ('default' in spec) expect(row).toContain(`\`${String(spec.default)}\``);
    }
    const documented = [...readme.matchAll(/^\|\s*`(--[a-z-]+)`/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(
      Object.values(settings)
        .map((s) => s.flag)
        .sort(),
    );
  });
});
