/**
 * Runs a folder of `*.fixture.ts` files in a child vitest and reads its JSON report: for the
 * self-tests of the conformance suites (mechanism-suite.test.ts, storage/store-suite.test.ts),
 * whose suites register vitest tests and so cannot run inside the vitest that checks them. Not
 * part of the built testing kit (tsconfig excludes it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One test of a fixture file, as vitest's JSON reporter writes it. */
export interface AssertionResult {
  readonly title: string;
  readonly status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
  readonly failureMessages: readonly string[];
}
/** One fixture file, as vitest's JSON reporter writes it. */
export interface FileResult {
  readonly name: string;
  readonly status: string;
  readonly message?: string;
  readonly assertionResults: readonly AssertionResult[];
}

/** The repository's vitest: the nearest node_modules/vitest/vitest.mjs up from here. */
function findVitest(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'vitest', 'vitest.mjs');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('vitest is not installed');
}

/** Runs vitest on `root` (its own vitest.config.ts) and returns each fixture's result by name (`x.fixture.ts` → `x`). */
export function runFixturesInChildVitest(root: string): Map<string, FileResult> {
  const outDir = mkdtempSync(join(tmpdir(), 'pep694-child-vitest-'));
  try {
    const outFile = join(outDir, 'report.json');
    // A clean environment for the child: it is its own vitest run, not a worker of this one.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV'),
    );
    const child = spawnSync(process.execPath, [findVitest(), 'run', '--root', root, '--reporter=json', `--outputFile=${outFile}`], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (!existsSync(outFile)) throw new Error(`the child vitest wrote no report (exit ${child.status}):\n${child.stdout}\n${child.stderr}`);
    const report = JSON.parse(readFileSync(outFile, 'utf8')) as { testResults: FileResult[] };
    return new Map(
      report.testResults.map((r) => [
        r.name
          .split('/')
          .pop()!
          .replace(/\.fixture\.ts$/, ''),
        r,
      ]),
    );
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
