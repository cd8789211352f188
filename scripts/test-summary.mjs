#!/usr/bin/env node
// Print the failed tests of one or more vitest JSON reports (scripts/test.sh writes one per leg into
// .test-results/), so the end of a long CI log says which test failed and why, not only which leg.
//   node scripts/test-summary.mjs .test-results/*.json
import { readFileSync, existsSync } from 'node:fs';
import { relative } from 'node:path';

const MAX_LINES = 25;
let failed = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) { console.log(`${file}: no report (the leg did not get as far as vitest's end)`); continue; }
  let report;
  try { report = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { console.log(`${file}: unreadable report (${e.message})`); continue; }
  for (const suite of report.testResults ?? []) {
    const where = relative(process.cwd(), suite.name ?? '');
    const bad = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
    if (bad.length === 0 && suite.status === 'failed') {
      failed++;
      console.log(`\n✗ [${file}] ${where}: the file failed outside any test`);
      console.log(String(suite.message ?? '').split('\n').slice(0, MAX_LINES).join('\n'));
    }
    for (const t of bad) {
      failed++;
      console.log(`\n✗ [${file}] ${where} > ${t.fullName ?? t.title}`);
      const msg = (t.failureMessages ?? []).join('\n').split('\n').slice(0, MAX_LINES).join('\n');
      console.log(msg);
    }
  }
}
console.log(failed === 0 ? 'no failed tests in the reports' : `\n${failed} failed test(s)`);
