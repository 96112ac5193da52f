// @ts-check
// Section `audit`: `audit verify` over BENCH_AUDIT_EVENTS chained events on SQLite, in a child process
// of its own (audit-verify.mjs).

import { forkChild } from '../children.mjs';
import { machineCpuSeconds } from '../cpu.mjs';
import { auditVerifyTable } from '../report.mjs';
import { log, settings } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

/** `audit verify` over `settings.auditEvents` events, in a child process of its own. */
const benchAuditVerify = async () => {
  log(`audit verify: writing ${settings.auditEvents} chained events on SQLite, then verifying them`);
  /** @type {any} */
  let result;
  let verifyStart;
  const handle = forkChild(
    'audit-verify.mjs',
    [],
    { BENCH_AUDIT_EVENTS: String(settings.auditEvents) },
    (m) => {
      if (m.type === 'progress') {
        log(`  ${m.text}`);
        if (m.text.startsWith('wrote ') && m.text.includes('chained')) verifyStart = machineCpuSeconds();
      }
      if (m.type === 'result') {
        const end = machineCpuSeconds();
        const total = verifyStart && end ? end.total - verifyStart.total : 0;
        // Busy CPU during the verify that was not the verify itself: other work on the machine.
        const othersCpuShare =
          total > 0 && end && verifyStart
            ? Math.max(0, (end.busy - verifyStart.busy - m.result.verifyCpuSeconds) / total)
            : undefined;
        result = { ...m.result, othersCpuShare };
      }
    },
  );
  const code = await handle.exited;
  if (code !== 0 || !result) throw new Error(`the audit verify bench failed (exit ${code})`);
  return result;
};

/** @typedef {Awaited<ReturnType<typeof benchAuditVerify>>} AuditVerifyResult */

/** @param {AuditVerifyResult} v */
const verdicts = (v) => [
  judge('audit-verify-1m', {
    subject: 'sqlite',
    value: v.verifySeconds,
    scale: v.events,
    detail: `${v.events} events, ${v.verifyCpuSeconds.toFixed(2)} s CPU`,
  }),
];

/**
 * @param {AuditVerifyResult} v
 * @returns {[string, string][]}
 */
const report = (v) => [['audit verify on SQLite', auditVerifyTable([v])]];

/** @type {import('./section.mjs').Section<object, AuditVerifyResult>} */
export const auditSection = { name: 'audit', run: () => benchAuditVerify(), verdicts, report };
