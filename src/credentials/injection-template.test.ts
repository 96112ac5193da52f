import { describe, expect, it } from 'vitest';
import { parseTemplate, renderTemplate, schemeOf, templateFields } from './injection-template.js';

describe('injection templates', () => {
  it('parses literal text and placeholders, spaces inside the braces allowed', () => {
    expect(parseTemplate('Bearer {{ token }}')).toEqual([{ literal: 'Bearer ' }, { field: 'token' }]);
    expect(parseTemplate('{{key}}:{{secret}}')).toEqual([
      { field: 'key' },
      { literal: ':' },
      { field: 'secret' },
    ]);
    expect(parseTemplate('no placeholder')).toEqual([{ literal: 'no placeholder' }]);
    expect(parseTemplate('{{ 1bad }} {x}')).toEqual([{ literal: '{{ 1bad }} {x}' }]);
  });

  it('names the fields used, in order', () => {
    expect(templateFields('{{a}}-{{b}}-{{a}}')).toEqual(['a', 'b', 'a']);
    expect(templateFields('plain')).toEqual([]);
  });

  it('finds an Authorization scheme only in `<Scheme> {{field}}`', () => {
    expect(schemeOf('Bearer {{token}}')).toEqual({ scheme: 'Bearer', field: 'token' });
    expect(schemeOf('Token {{ api_key }}')).toEqual({ scheme: 'Token', field: 'api_key' });
    expect(schemeOf('{{api_key}}')).toBeUndefined();
    expect(schemeOf('Bearer  {{token}}')).toBeUndefined();
    expect(schemeOf('Bearer {{token}} extra')).toBeUndefined();
    expect(schemeOf('Bearer {{a}}{{b}}')).toBeUndefined();
  });

  it('renders every field, and refuses a field it was not given', () => {
    expect(renderTemplate('Basic {{ basic_auth }}', { basic_auth: 'dTpw' })).toBe('Basic dTpw');
    expect(renderTemplate('{{k}}&{{k}}', { k: 'v' })).toBe('v&v');
    expect(() => renderTemplate('{{missing}}', {})).toThrow(TypeError);
  });
});
