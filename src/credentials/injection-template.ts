/**
 * The `{{field}}` templates that say how a credential is injected (`Bearer {{token}}`,
 * `{{api_key}}`, `Basic {{basic_auth}}`): parsed here and nowhere else, for validating a template,
 * for the reveal's token type, and for rendering on the way out (the proxies).
 */

export type TemplatePart = { literal: string } | { field: string };

const placeholder = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The template as literal text and field references, in order. */
export const parseTemplate = (template: string): TemplatePart[] => {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (const match of template.matchAll(placeholder)) {
    if (match.index > at) parts.push({ literal: template.slice(at, match.index) });
    parts.push({ field: match[1] as string });
    at = match.index + match[0].length;
  }
  if (at < template.length) parts.push({ literal: template.slice(at) });
  return parts;
};

/** The fields a template names, in order (repeats kept). */
export const templateFields = (template: string): string[] =>
  parseTemplate(template).flatMap((part) => ('field' in part ? [part.field] : []));

/**
 * `<Scheme> {{field}}` (one word, one space, one placeholder: `Bearer {{token}}`) gives the scheme and
 * the field; any other template gives undefined.
 */
export const schemeOf = (template: string): { scheme: string; field: string } | undefined => {
  const [first, second, ...rest] = parseTemplate(template);
  if (!first || !second || rest.length > 0 || !('literal' in first) || !('field' in second)) return undefined;
  const scheme = /^(\S+) $/.exec(first.literal)?.[1];
  return scheme === undefined ? undefined : { scheme, field: second.field };
};

/** The template with every field filled in; throws on a field `values` lacks (validated before use). */
export const renderTemplate = (template: string, values: Readonly<Record<string, string>>): string =>
  parseTemplate(template)
    .map((part) => {
      if ('literal' in part) return part.literal;
      const value = values[part.field];
      if (value === undefined) throw new TypeError(`the template names a field the credential lacks`);
      return value;
    })
    .join('');
