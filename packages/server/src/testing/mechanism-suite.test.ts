// The conformance suite catches real defects. Each fixture in ./broken-mechanisms/ runs the suite
// on one variant of a small mechanism: a correct one (the control), one that skips the hash check
// (reports the declared digests instead of those of the bytes it received), one that mounts its
// route without authorization, and one whose instructions carry no identifier. The suite registers
// vitest tests, so the fixtures run in a child vitest; this file checks which of the suite's tests
// failed for each, and that each failure says what is wrong.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface AssertionResult {
  readonly title: string;
  readonly status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
  readonly failureMessages: readonly string[];
}
interface FileResult {
  readonly name: string;
  readonly status: string;
  readonly message?: string;
  readonly assertionResults: readonly AssertionResult[];
}

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'broken-mechanisms');

/** The repository's vitest: the nearest node_modules/vitest/vitest.mjs up from here. */
function findVitest(): string {
  for (let dir = here; dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'vitest', 'vitest.mjs');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('vitest is not installed');
}

const TESTS = {
  naming: 'PEP 694 Server Specific File Upload Mechanisms: the identifier follows the naming rules',
  identifier: 'PEP 694 File Upload Session: instructions carry the identifier',
  wrongHash: 'a wrong hash ends in error',
  short: 'a short upload ends in a refusal or error',
  overlong: 'an overlong upload ends in a refusal or error',
  auth: "PEP 694 Authentication and Authorization: refuses missing credentials, a principal without permission, and another session's principal",
  authProbe: 'PEP 694 Authentication and Authorization: every URL in the instructions refuses requests without credentials',
} as const;

describe('the mechanism conformance suite catches real defects', () => {
  let outDir: string;
  let results: Map<string, FileResult>;

  beforeAll(() => {
    outDir = mkdtempSync(join(tmpdir(), 'pep694-suite-selftest-'));
    const outFile = join(outDir, 'report.json');
    // A clean environment for the child: it is its own vitest run, not a worker of this one.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV'));
    const child = spawnSync(process.execPath, [findVitest(), 'run', '--root', fixtures, '--reporter=json', `--outputFile=${outFile}`], {
      cwd: fixtures,
      env,
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (!existsSync(outFile)) throw new Error(`the child vitest wrote no report (exit ${child.status}):\n${child.stdout}\n${child.stderr}`);
    const report = JSON.parse(readFileSync(outFile, 'utf8')) as { testResults: FileResult[] };
    results = new Map(report.testResults.map((r) => [r.name.split('/').pop()!.replace(/\.fixture\.ts$/, ''), r]));
  }, 300_000);
  afterAll(() => {
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  /** The suite's tests of one fixture run: title → result. */
  function run(name: string): Map<string, AssertionResult> {
    const file = results.get(name);
    expect(file, `no result for ${name}.fixture.ts (found ${[...results.keys()].join(', ')})`).toBeDefined();
    expect(file!.assertionResults.length, `${name}.fixture.ts ran no test: ${file!.message ?? ''}`).toBeGreaterThan(10);
    return new Map(file!.assertionResults.map((a) => [a.title, a]));
  }
  const failed = (tests: Map<string, AssertionResult>) => [...tests.values()].filter((a) => a.status === 'failed').map((a) => a.title);
  const message = (tests: Map<string, AssertionResult>, title: string) => tests.get(title)?.failureMessages.join('\n') ?? '';

  it('passes a correct mechanism: every check of the control passes', () => {
    const tests = run('correct');
    expect(failed(tests)).toEqual([]);
    expect([...tests.values()].every((a) => a.status === 'passed')).toBe(true);
  });

  it('fails a mechanism that skips the hash check, saying completion accepted bytes whose sha256 does not match', () => {
    const tests = run('reports-declared-digests');
    // Only the wrong-hash check can tell: with right bytes, the declared digests are the right ones.
    expect(failed(tests)).toEqual([TESTS.wrongHash]);
    expect(message(tests, TESTS.wrongHash)).toMatch(/completion accepted bytes whose sha256 does not match the declared one/);
    expect(message(tests, TESTS.wrongHash)).toMatch(/must report the digests of the bytes it received/);
  });

  it('fails a mechanism that mounts a route without auth, saying a request without credentials was accepted', () => {
    const tests = run('route-without-auth');
    expect(failed(tests).sort()).toEqual([TESTS.auth, TESTS.authProbe].sort());
    expect(message(tests, TESTS.auth)).toMatch(/a request without credentials was accepted: every route the mechanism mounts must call host\.authorizeTransfer/);
    expect(message(tests, TESTS.authProbe)).toMatch(/an unauthenticated POST http:\/\/127\.0\.0\.1:\d+\/upload\/mechanisms\/vnd-fixture-post\/files\/\S+ was answered 2\d\d/);
  });

  it('fails a mechanism whose instructions carry no identifier, saying so', () => {
    const tests = run('no-identifier');
    expect(tests.get(TESTS.naming)?.status).toBe('passed'); // the mechanism's own identifier is fine
    expect(failed(tests)).toContain(TESTS.identifier);
    expect(message(tests, TESTS.identifier)).toMatch(/instructions carry no identifier: the mechanism map must include "identifier": "vnd-fixture-post"/);
    // Every other check needs a file upload session, which the host refuses to create; each says why.
    for (const title of failed(tests).filter((t) => t !== TESTS.identifier)) {
      expect(message(tests, title), title).toMatch(/creating a file upload session failed because instructions carry no identifier/);
    }
  });
});
