// @ts-check
// What a section is. Each file beside this one exports one.

/**
 * A part of `npm run bench` that `BENCH_ONLY` can pick: `run` measures and returns its figures (saved
 * in the JSON results under the section's name), `verdicts` judges them against bench/targets.mjs,
 * `report` gives the console tables as [heading, table] pairs.
 * @template Context, Result
 * @typedef {object} Section
 * @property {import('../settings.mjs').SectionName} name
 * @property {(context: Context) => Promise<Result>} run
 * @property {(result: Result) => import('../verdicts.mjs').Verdict[]} verdicts
 * @property {(result: Result) => [string, string][]} report
 */

export {};
