// The conformance suite catches real defects. Each fixture in ./broken-mechanisms/ runs the suite
// on one variant of a small mechanism: a correct one (the control), and one per defect: it skips
// the hash check (reports the declared digests instead of those of the bytes it received), mounts
// its route without authorization, returns instructions without an identifier, sends 100 Continue
// before authorizing or never, leaves a refused body unread, writes outside the staging key, or
// forgets in cancel what instructions prepared. The suite registers vitest tests, so the fixtures
// run in a child vitest; this file checks which of the suite's tests failed for each, and that
// each failure says what is wrong.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runFixturesInChildVitest, type AssertionResult, type FileResult } from './child-vitest.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'broken-mechanisms');

const TESTS = {
  naming: 'PEP 694 Server Specific File Upload Mechanisms: the identifier follows the naming rules',
  identifier: 'PEP 694 File Upload Session: instructions carry the identifier',
  auth: "rule 1: refuses missing credentials, a principal without permission, and another session's principal (PEP 694 Authentication and Authorization)",
  authProbe: 'rule 1: every URL in the instructions refuses requests without credentials, without permission, or for an unknown file',
  continueRefused: 'rule 2: a request refused for its credentials is never sent 100 Continue',
  continueInvited: 'rule 2: an authorized body sent with Expect: 100-continue is invited, and the upload succeeds',
  drain: "rule 3: a refused request's body is drained: the client gets the answer and the connection carries the next request",
  stagingKey: 'rule 4: the bytes are written only under the staging key',
  cancelUndoes: 'rule 5: cancel undoes instructions() when the host cannot store the file upload session',
  wrongHash: 'rule 6: a wrong hash ends in error',
  short: 'rule 6: a short upload ends in a refusal or error',
  overlong: 'rule 6: an overlong upload ends in a refusal or error',
} as const;

describe('the mechanism conformance suite catches real defects', () => {
  let results: Map<string, FileResult>;

  beforeAll(() => {
    results = runFixturesInChildVitest(fixtures);
  }, 300_000);

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

  it('fails a mechanism that skips the hash check (rule 6), saying completion accepted bytes whose sha256 does not match', () => {
    const tests = run('reports-declared-digests');
    // Only the wrong-hash check can tell: with right bytes, the declared digests are the right ones.
    expect(failed(tests)).toEqual([TESTS.wrongHash]);
    expect(message(tests, TESTS.wrongHash)).toMatch(/completion accepted bytes whose sha256 does not match the declared one/);
    expect(message(tests, TESTS.wrongHash)).toMatch(/must report the digests of the bytes it received/);
  });

  it('fails a mechanism that mounts a route without auth (rule 1), saying a request without credentials was accepted', () => {
    const tests = run('route-without-auth');
    // It also invites the body of requests it never authorized: rule 2 says so too.
    expect(failed(tests).sort()).toEqual([TESTS.auth, TESTS.authProbe, TESTS.continueRefused].sort());
    expect(message(tests, TESTS.auth)).toMatch(
      /a request without credentials was accepted: every route the mechanism mounts must call host\.authorizeTransfer/,
    );
    expect(message(tests, TESTS.authProbe)).toMatch(
      /rule 1: an unauthenticated POST http:\/\/127\.0\.0\.1:\d+\/upload\/mechanisms\/vnd-fixture-post\/files\/\S+ was answered 2\d\d/,
    );
  });

  it('fails a mechanism that sends 100 Continue before authorizing (rule 2), saying so', () => {
    const tests = run('continue-before-auth');
    expect(failed(tests)).toEqual([TESTS.continueRefused]);
    expect(message(tests, TESTS.continueRefused)).toMatch(
      /rule 2: an unauthenticated POST \S+ with Expect: 100-continue was sent 100 Continue: invite the body \(inviteBody\) only after host\.authorizeTransfer/,
    );
  });

  it('fails a mechanism that never sends 100 Continue (rule 2), saying the route waited for a body it never invited', () => {
    const tests = run('no-continue');
    expect(failed(tests)).toEqual([TESTS.continueInvited]);
    expect(message(tests, TESTS.continueInvited)).toMatch(
      /rule 2: the route waited for a body it never invited .* call inviteBody\(req, res\)/,
    );
  });

  it('fails a mechanism that destroys a refused request instead of draining it (rule 3), saying its body was left unread', () => {
    const tests = run('no-drain');
    expect(failed(tests)).toEqual([TESTS.drain]);
    expect(message(tests, TESTS.drain)).toMatch(
      /rule 3: POST \S+ was answered 413 and its 256 KiB body was left unread .* answer refusals with refuse\(\)/,
    );
  });

  it('fails a mechanism that writes outside the staging key (rule 4), naming the key', () => {
    const tests = run('writes-outside-staging');
    expect(failed(tests)).toEqual([TESTS.stagingKey]);
    expect(message(tests, TESTS.stagingKey)).toMatch(
      /rule 4: the mechanism wrote uploads\/\S+ in the blob store: the file's bytes go to host\.blobs\.stage\(ctx\.stagingKey\)/,
    );
  });

  it('fails a mechanism whose cancel leaves what instructions prepared (rule 5), saying sweep found it', () => {
    const tests = run('cancel-leaves-prepared');
    expect(failed(tests)).toEqual([TESTS.cancelUndoes]);
    expect(message(tests, TESTS.cancelUndoes)).toMatch(
      /rule 5: cancel\(\) did not undo what instructions\(\) prepared .* sweep\(\) then found 1 thing/,
    );
  });

  it('fails a mechanism whose instructions carry no identifier, saying so', () => {
    const tests = run('no-identifier');
    expect(tests.get(TESTS.naming)?.status).toBe('passed'); // the mechanism's own identifier is fine
    expect(failed(tests)).toContain(TESTS.identifier);
    expect(message(tests, TESTS.identifier)).toMatch(
      /instructions carry no identifier: the mechanism map must include "identifier": "vnd-fixture-post"/,
    );
    // Every other check needs a file upload session, which the host refuses to create; each says why.
    for (const title of failed(tests).filter((t) => t !== TESTS.identifier)) {
      expect(message(tests, title), title).toMatch(/creating a file upload session failed because instructions carry no identifier/);
    }
  });
});
