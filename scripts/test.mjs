#!/usr/bin/env node
// Runs the whole vitest suite and ends with one line of our own, alone on the line:
// "N passed, N failed" (CI reads that line, not vitest's summary). Extra args go to vitest.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const outDir = join(root, '.test-results');
const outFile = join(outDir, 'vitest.json');
// Reliability counts (see @pep694/server/testing tally()): one JSON line per count, summed below.
const tallyFile = join(outDir, 'tally.jsonl');
rmSync(outFile, { force: true });
rmSync(tallyFile, { force: true });
mkdirSync(outDir, { recursive: true });

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${outFile}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, PEP694_TALLY_FILE: tallyFile } },
);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const report = JSON.parse(readFileSync(outFile, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A file that fails to load counts as a failure even though it ran no test.
  const brokenSuites = (report.testResults ?? []).filter((r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0).length;
  failed += brokenSuites;
} catch {
  failed += 1; // no report at all: vitest itself failed
}
if (run.status !== 0 && failed === 0) failed = 1;

// Per-category counts of the reliability suite, printed before the closing line.
const order = ['kill points survived', 'races run', 'fuzz cases', 'auth cases', 'exhaustion cases', 'hostile cases'];
const totals = new Map(order.map((c) => [c, 0]));
try {
  for (const line of readFileSync(tallyFile, 'utf8').split('\n')) {
    if (!line) continue;
    const { category, count } = JSON.parse(line);
    totals.set(category, (totals.get(category) ?? 0) + count);
  }
} catch {
  // no tally file: a filtered run that reached no reliability test
}
console.log(`\nreliability suite: ${[...totals].map(([c, n]) => `${n} ${c}`).join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || run.status !== 0 ? 1 : 0);
