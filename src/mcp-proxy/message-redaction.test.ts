import { describe, expect, it } from 'vitest';
import { createTextRedactor, redactMessage } from './message-redaction.js';

const secret = 'sk-live/+ab"c&d=é';

describe('redacting injected secrets from upstream MCP messages', () => {
  const redact = createTextRedactor([secret, 'short']);
  const echo = (text: string) => ({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text }] } });

  it.each([
    ['as it is', secret],
    ['base64', Buffer.from(secret).toString('base64')],
    ['base64 without padding', Buffer.from(secret).toString('base64').replace(/=+$/, '')],
    ['base64url', Buffer.from(secret).toString('base64url')],
    ['URL-encoded', encodeURIComponent(secret)],
    ['JSON-escaped inside a JSON string', JSON.stringify({ token: secret })],
  ])('replaces the secret %s', (_how, form) => {
    const { message, count } = redactMessage(redact, echo(`token: ${form}!`), () => echo('x'));
    const text = JSON.stringify(message);
    expect(count).toBeGreaterThan(0);
    expect(text).not.toContain('sk-live');
    expect(text).not.toContain(Buffer.from(secret).toString('base64').slice(0, 12));
    expect(text).not.toContain(encodeURIComponent(secret));
    expect(message.result.content[0]?.text).toContain('[REDACTED]');
  });

  it('leaves a message without the secret as it is, and short values alone', () => {
    const original = echo('nothing short here');
    const { message, count } = redactMessage(redact, original, () => echo('x'));
    expect(count).toBe(0);
    expect(message).toBe(original);
  });

  it('counts every occurrence', () => {
    expect(redact(`${secret} and ${secret}`).count).toBe(2);
  });
});
