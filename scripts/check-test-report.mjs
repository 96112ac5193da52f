#!/usr/bin/env node
// Reads Vitest's JSON report and fails (exit 1) unless the run really tested something: the report
// exists, no test or test file failed, at least one test passed, and the PostgreSQL suite ran with
// nothing in it skipped. A PostgreSQL test is one in a `*.pg.test.ts` file or inside a block titled
// `on PostgreSQL` (what `describeOnEveryStore` in test/helpers/stores.ts makes). Its last line is the summary CI reads:
// `tests: N passed, N failed, N skipped`.
//
// Usage: node scripts/check-test-report.mjs [test-results/vitest.json]

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const reportPath = process.argv[2] ?? 'test-results/vitest.json';
const postgresFile = /\.pg\.test\.ts$/;
// Kept in step with `onPostgresTitle` in test/helpers/stores.ts.
const postgresBlock = 'on PostgreSQL';
const isPostgresTest = (fileIsPostgres, test) =>
  fileIsPostgres || (Array.isArray(test.ancestorTitles) && test.ancestorTitles.includes(postgresBlock));
const skippedStatuses = new Set(['skipped', 'pending', 'todo', 'disabled']);

const fail = (message) => {
  console.error(`check-test-report: ${message}`);
  process.exit(1);
};

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (error) {
  fail(
    error.code === 'ENOENT'
      ? `no report at ${reportPath}: Vitest did not run to the end (or CI was unset, so its json reporter was off)`
      : `cannot read the report ${reportPath}: ${error.message}`,
  );
}
if (!Array.isArray(report?.testResults)) fail(`${reportPath} is not a Vitest JSON report (no testResults)`);

const problems = [];
const counts = { passed: 0, failed: 0, skipped: 0 };
const postgres = { files: 0, passed: 0, skipped: [] };

for (const file of report.testResults) {
  const name = relative(process.cwd(), file.name ?? '(unnamed file)');
  const tests = Array.isArray(file.assertionResults) ? file.assertionResults : [];
  const fileIsPostgres = postgresFile.test(name);
  if (fileIsPostgres || tests.some((test) => isPostgresTest(false, test))) postgres.files += 1;

  let fileFailures = 0;
  for (const test of tests) {
    const title = `${name} > ${test.fullName ?? test.title}`;
    const isPostgres = isPostgresTest(fileIsPostgres, test);
    if (test.status === 'passed') {
      counts.passed += 1;
      if (isPostgres) postgres.passed += 1;
    } else if (test.status === 'failed') {
      counts.failed += 1;
      fileFailures += 1;
      problems.push(`failed: ${title}`);
    } else if (skippedStatuses.has(test.status)) {
      counts.skipped += 1;
      if (isPostgres) postgres.skipped.push(`${test.status}: ${title}`);
    } else {
      counts.failed += 1;
      fileFailures += 1;
      problems.push(`unknown status '${test.status}': ${title}`);
    }
  }
  // A file that fails to load or whose hooks throw has no failed test of its own; count it once.
  if (file.status === 'failed' && fileFailures === 0) {
    counts.failed += 1;
    problems.push(`failed file: ${name}${file.message ? ` (${file.message.split('\n')[0]})` : ''}`);
  }
}

if ((report.numFailedTests ?? 0) > 0 && counts.failed === 0) {
  counts.failed = report.numFailedTests;
  problems.push(`the report counts ${report.numFailedTests} failed test(s)`);
}
if ((report.numFailedTestSuites ?? 0) > 0 && counts.failed === 0) {
  counts.failed = report.numFailedTestSuites;
  problems.push(`the report counts ${report.numFailedTestSuites} failed suite(s)`);
}
if (counts.passed === 0) problems.push('no test passed: the run tested nothing');
if (postgres.files === 0) {
  problems.push(
    'no PostgreSQL test (*.pg.test.ts or an `on PostgreSQL` block) was in the run: the PostgreSQL suite did not run',
  );
} else if (postgres.passed === 0) {
  problems.push(
    'no PostgreSQL test passed: the PostgreSQL suite did not run (is TOKENVAULT_TEST_DATABASE_URL set?)',
  );
}
for (const skipped of postgres.skipped) {
  problems.push(`PostgreSQL test not run: ${skipped}`);
}

for (const problem of problems) console.error(`check-test-report: ${problem}`);
console.log(
  `check-test-report: ${report.testResults.length} files; PostgreSQL: ${postgres.files} files, ${postgres.passed} passed, ${postgres.skipped.length} skipped`,
);
console.log(`tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(problems.length > 0 ? 1 : 0);
