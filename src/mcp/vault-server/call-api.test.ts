import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isVaultError } from '../../errors/vault-error.js';
import { callApiAnswer, callApiBodyCap, callApiRequest } from './call-api.js';

const read = async (body: Readable | undefined) => {
  const chunks: Buffer[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

describe('callApiRequest', () => {
  it('splits the path from the query, frames the body itself, and drops the tool’s framing headers', async () => {
    const request = callApiRequest({
      credential: 'github',
      method: 'POST',
      path: '/repos/o/r/issues?state=open&per_page=5',
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': '999',
        'Transfer-Encoding': 'chunked',
      },
      body: '{"title":"é"}',
      user: 'alice',
    });
    expect(request).toMatchObject({
      service: 'github',
      method: 'POST',
      rawPath: '/repos/o/r/issues',
      rawQuery: 'state=open&per_page=5',
      endUser: 'alice',
      rawHeaders: [
        'Content-Type',
        'application/json',
        'Content-Length',
        String(Buffer.byteLength('{"title":"é"}')),
      ],
    });
    expect(await read(request.body)).toBe('{"title":"é"}');
  });

  it('sends no body and no Content-Length when there is none', () => {
    const request = callApiRequest({ credential: 'github', method: 'GET', path: '/user' });
    expect(request).toMatchObject({ rawPath: '/user', rawQuery: '', rawHeaders: [], body: undefined });
  });

  it.each([
    ['a CR/LF in a value', { 'x-a': 'one\r\nx-injected: two' }],
    ['a NUL in a value', { 'x-a': 'one\u0000two' }],
    ['a space in a name', { 'x a': 'one' }],
    ['a colon in a name', { 'x-a:': 'one' }],
    ['an empty name', { '': 'one' }],
  ])('refuses %s with proxy_header_refused', (_case, headers) => {
    let caught: unknown;
    try {
      callApiRequest({ credential: 'github', method: 'GET', path: '/', headers });
    } catch (error) {
      caught = error;
    }
    expect(isVaultError(caught) && caught.code).toBe('proxy_header_refused');
  });
});

describe('callApiAnswer', () => {
  it('returns a scanned body as text, with the headers flattened', () => {
    const answer = callApiAnswer({
      status: 201,
      headers: { 'content-type': 'application/json', vary: ['accept', 'origin'] },
      body: Buffer.from('{"token":"[REDACTED]"}'),
    });
    expect(answer).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json', vary: 'accept, origin' },
      body: '{"token":"[REDACTED]"}',
      truncated: false,
    });
  });

  it('cuts a long body at the cap', () => {
    const answer = callApiAnswer({ status: 200, headers: {}, body: Buffer.alloc(callApiBodyCap + 10, 0x61) });
    expect(answer.truncated).toBe(true);
    expect(answer.body).toHaveLength(callApiBodyCap);
  });

  it('returns no body the proxy did not scan, and stops reading it', () => {
    const stream = Readable.from([Buffer.from('binary or too large')]);
    const answer = callApiAnswer({ status: 200, headers: {}, body: stream });
    expect(answer).toMatchObject({
      body: null,
      truncated: false,
      body_omitted: expect.stringMatching(/not returned/),
    });
    expect(stream.destroyed).toBe(true);
  });

  it('answers a bodiless response with a null body', () => {
    expect(callApiAnswer({ status: 204, headers: {}, body: null })).toEqual({
      status: 204,
      headers: {},
      body: null,
      truncated: false,
    });
  });
});
