import { describe, expect, it } from 'vitest';
import { csvHeader, csvLine, jsonLine, toAuditEvent } from './audit-format.js';

const row = {
  seq: '7' as unknown as number, // pg returns bigint as text
  id: 'e7',
  time: '2026-06-01T12:00:00.000Z',
  namespace: 'default',
  actor_type: 'anonymous',
  actor_id: null,
  action: 'admin.authenticate',
  target_type: null,
  target_id: null,
  decision: 'deny',
  reason: 'admin_token_invalid',
  client_ip: '10.0.0.1',
  user_agent: '=HYPERLINK("http://x", "a,b")',
  request_id: 'req_7',
  details: '{"method":"GET","status":401}',
  prev_hash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
};

describe('audit export formats', () => {
  it('shows seq as a number and details as an object', () => {
    const event = toAuditEvent(row);
    expect(event.seq).toBe(7);
    expect(event.details).toEqual({ method: 'GET', status: 401 });
    expect(toAuditEvent({ ...row, details: 'not json' }).details).toEqual({ unparseable: 'not json' });
  });

  it('writes one JSON object per line, keys in column order', () => {
    const line = jsonLine(row);
    expect(line.endsWith('\n')).toBe(true);
    expect(Object.keys(JSON.parse(line) as object)).toEqual(csvHeader.trim().split(','));
  });

  it('quotes CSV cells per RFC 4180 and defuses spreadsheet formulas', () => {
    expect(csvHeader).toBe(
      'seq,id,time,namespace,actor_type,actor_id,action,target_type,target_id,decision,reason,client_ip,user_agent,request_id,details,prev_hash,hash\r\n',
    );
    const line = csvLine(row);
    expect(
      line.startsWith('7,e7,2026-06-01T12:00:00.000Z,default,anonymous,,admin.authenticate,,,deny,'),
    ).toBe(true);
    expect(line).toContain(`"'=HYPERLINK(""http://x"", ""a,b"")"`);
    expect(line).toContain('"{""method"":""GET"",""status"":401}"');
    expect(line.endsWith('\r\n')).toBe(true);
  });
});
