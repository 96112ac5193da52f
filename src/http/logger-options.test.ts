import { describe, expect, it } from 'vitest';
import { chooseLogFormat, renderTextLine } from './logger-options.js';

describe('log format', () => {
  it('auto is text on a terminal and JSON otherwise; an explicit choice always wins', () => {
    expect(chooseLogFormat('auto', true)).toBe('text');
    expect(chooseLogFormat('auto', false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('text', false)).toBe('text');
  });

  it('renders a JSON line as one short human line, without the fields every line has', () => {
    const line = JSON.stringify({
      level: 30,
      time: '2026-06-01T12:00:00.000Z',
      service: 'tokenvault',
      path: '/tmp/x/admin-token',
      msg: 'root admin token written (mode 0600); it is not logged',
    });
    expect(renderTextLine(`${line}\n`)).toBe(
      '2026-06-01T12:00:00.000Z [INFO]  root admin token written (mode 0600); it is not logged path=/tmp/x/admin-token\n',
    );
  });

  it('quotes values with spaces, shows objects as JSON and errors by their message', () => {
    const line = JSON.stringify({
      level: 50,
      time: '2026-06-01T12:00:00.000Z',
      msg: 'a component failed to stop',
      component: 'audit writer',
      err: { type: 'Error', message: 'disk full', stack: 'Error: disk full\n    at x' },
      req: { method: 'GET', path: '/v1/health' },
      status: 500,
      token: '[redacted]',
    });
    expect(renderTextLine(line)).toBe(
      '2026-06-01T12:00:00.000Z [ERROR] a component failed to stop component="audit writer" err="Error: disk full" req={"method":"GET","path":"/v1/health"} status=500 token=[redacted]\n',
    );
  });

  it('passes through a line that is not a JSON object', () => {
    expect(renderTextLine('not json\n')).toBe('not json\n');
    expect(renderTextLine('[1,2]\n')).toBe('[1,2]\n');
  });
});
