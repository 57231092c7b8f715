// The store conformance suites (@pep694/store-conformance) catch real defects. Each fixture in
// ./broken-stores/ runs a suite on the real stores behind a wrapper with one defect: none (the
// control), two live sessions per name+version, a publish that drops unfinished files instead of
// refusing, an abort that commits, and ranges read with an exclusive end. The suites register
// vitest tests, so the fixtures run in a child vitest; this file checks which tests failed for
// each, and that each failure names the rule the store broke.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLOB_STORE_RULES, SESSION_STORE_RULES, titleOf, type Rule } from '@pep694/store-conformance';
import { beforeAll, describe, expect, it } from 'vitest';
import { runFixturesInChildVitest, type AssertionResult, type FileResult } from '../testing/child-vitest.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'broken-stores');

const S = SESSION_STORE_RULES;
const B = BLOB_STORE_RULES;

describe('the store conformance suites catch real defects', () => {
  let results: Map<string, FileResult>;

  beforeAll(() => {
    results = runFixturesInChildVitest(fixtures);
  }, 300_000);

  /** The suite's tests of one fixture run: title → result. */
  function run(name: string, expectedTests: number): Map<string, AssertionResult> {
    const file = results.get(name);
    expect(file, `no result for ${name}.fixture.ts (found ${[...results.keys()].join(', ')})`).toBeDefined();
    expect(file!.assertionResults.length, `${name}.fixture.ts ran ${file!.assertionResults.length} tests: ${file!.message ?? ''}`).toBe(
      expectedTests,
    );
    return new Map(file!.assertionResults.map((a) => [a.title, a]));
  }
  const failed = (tests: Map<string, AssertionResult>) =>
    [...tests.values()]
      .filter((a) => a.status === 'failed')
      .map((a) => a.title)
      .sort();
  const titles = (...rules: Rule[]) => rules.map(titleOf).sort();
  /** Each rule's failure message starts with the rule, then says what went wrong. */
  function expectNamed(tests: Map<string, AssertionResult>, rule: Rule, detail: RegExp): void {
    const message = tests.get(titleOf(rule))?.failureMessages.join('\n') ?? '';
    expect(message, titleOf(rule)).toMatch(new RegExp(`^\\w*Error: ${rule.rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect(message, titleOf(rule)).toMatch(detail);
  }
  const sessionRules = Object.keys(S).length;
  const blobRules = Object.keys(B).length;

  it('passes the real stores: every rule of both suites holds for the control', () => {
    const tests = run('correct', sessionRules + blobRules);
    expect(failed(tests)).toEqual([]);
    expect([...tests.values()].every((a) => a.status === 'passed')).toBe(true);
  });

  it('fails a session store that lets two live sessions exist for one name+version, naming the uniqueness rule', () => {
    const tests = run('duplicate-live-sessions', sessionRules);
    expect(failed(tests)).toEqual(titles(S.liveSessionUnique, S.pep440EqualVersions, S.concurrentCreatesOneWinner));
    expectNamed(tests, S.liveSessionUnique, /a second createSession for foo 1\.0 answered 'created' while a session for it was open/);
    expectNamed(tests, S.pep440EqualVersions, /createSession for foo 1\.0\.0 \(release key 1\) answered 'created' while foo 1\.0 was open/);
    expectNamed(tests, S.concurrentCreatesOneWinner, /24 concurrent creates of foo 2\.0 made 24 sessions/);
  });

  it('fails a session store whose publish is not all-or-nothing, naming the atomicity rule', () => {
    const tests = run('publish-drops-unfinished', sessionRules);
    expect(failed(tests)).toEqual(titles(S.publishAllOrNothingUnfinished));
    expectNamed(tests, S.publishAllOrNothingUnfinished, /publish \(defer: false\) with a pending and an error file answered 'published'/);
  });

  it('fails a blob store whose abort commits, naming the abort rule', () => {
    const tests = run('abort-commits', blobRules);
    expect(failed(tests)).toEqual(titles(B.abortLeavesNothing));
    expectNamed(tests, B.abortLeavesNothing, /size must be undefined after abort/);
  });

  it('fails a blob store that reads ranges with an exclusive end, naming the range rule', () => {
    const tests = run('exclusive-range-end', blobRules);
    expect(failed(tests)).toEqual(titles(B.inclusiveRanges));
    expectNamed(tests, B.inclusiveRanges, /a middle span \(1000-70000\) must be 69001 bytes/);
  });
});
