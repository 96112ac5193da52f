// @ts-check
// A figure against its target (targets.mjs): the only place a verdict is decided.

import { target } from './targets.mjs';

/**
 * @typedef {object} Verdict
 * @property {string} target  the target's id
 * @property {string} subject  what was measured (`sqlite`, `sqlite, 64 connections`, …)
 * @property {number} value  the figure, in the target's unit
 * @property {boolean | undefined} met  undefined: the run was too small to judge (see `scale`)
 * @property {boolean} judged  false: shown for reference only (the target is about another store)
 * @property {string} detail  the figures behind the value, for the report
 */

/**
 * @param {string} id  the target
 * @param {{ subject: string, value: number, detail?: string, judged?: boolean, scale?: number }} figure
 *   `scale`: how big the run was, in the unit of the target's `scale` (keys, events)
 * @returns {Verdict}
 */
export const judge = (id, { subject, value, detail = '', judged = true, scale }) => {
  const t = target(id);
  const tooSmall = t.scale !== undefined && (scale === undefined || scale < t.scale.atLeast);
  const compared =
    t.compare === '<'
      ? value < t.threshold
      : t.compare === '<='
        ? value <= t.threshold
        : value >= t.threshold;
  return { target: id, subject, value, met: tooSmall ? undefined : compared, judged, detail };
};

/** @param {Verdict} v */
const status = (v) => {
  const t = target(v.target);
  if (v.met === undefined)
    return `n/a (judged at ${t.scale?.atLeast.toLocaleString('en-US')} ${t.scale?.of} or more)`;
  return v.met ? 'met' : 'NOT met';
};

/**
 * One line per verdict, as the report prints them.
 * @param {Verdict[]} verdicts
 */
export const verdictLines = (verdicts) =>
  verdicts.map((v) => {
    const t = target(v.target);
    const value = Number.isInteger(v.value) ? String(v.value) : v.value.toFixed(t.unit === '%' ? 1 : 2);
    const figures = [`${value} ${t.unit}`, v.detail].filter(Boolean).join('; ');
    return `  ${t.description}, ${v.subject}${v.judged ? '' : ' (for reference)'}: ${status(v)} (${figures})`;
  });
