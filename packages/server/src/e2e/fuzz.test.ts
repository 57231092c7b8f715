/**
 * Hostile input to every JSON endpoint of the session API (PEP 694 "Errors"): property-based
 * bodies that violate the schema, wrong types, huge strings, deep nesting, duplicate keys and
 * invalid UTF-8. Every answer is a 2xx for a body that happens to be valid, or a 4xx problem+json;
 * never a 5xx. Bounded: a fixed number of runs per endpoint, seeded.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { DEEPLY_NESTED_JSON, HOSTILE_API_PATHS, MALFORMED_JSON_BODIES, tally, type TestServer } from '../testing/index.js';
import { schemaShapedBody } from '../testing/arbitraries.js';
import { api, createFile, createSession, META, startServer, TEST_TOKENS } from './helpers.js';

let t: TestServer;
let targets: { name: string; url: string }[];
/** Fuzz cases answered as they must be, reported once the file is done. */
let cases = 0;
beforeAll(async () => {
  t = await startServer();
  const s = await createSession(t.url, 'fuzz-target', '1.0');
  const f = await createFile(s, 'fuzz_target-1.0.tar.gz', Buffer.from('fuzz'));
  targets = [
    { name: 'create publishing session', url: t.url },
    { name: 'create file upload session', url: s.links.upload! },
    { name: 'extend publishing session', url: s.links.extend! },
    { name: 'complete file upload session', url: f.links.complete! },
    { name: 'extend file upload session', url: f.links.extend! },
    // Publish last in each run would change state; a publish with a pending file answers 409.
    { name: 'publish', url: s.links.publish! },
  ];
});
afterAll(async () => {
  tally('fuzz cases', cases);
  await t.close();
});

async function post(url: string, body: string | Uint8Array) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKENS.alice}`, 'content-type': UPLOAD_V2_JSON },
    body,
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

function expectHandled(r: { status: number; type: string | null; text: string }, what: string) {
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  if (r.status >= 400) {
    expect(r.type, what).toBe('application/problem+json');
    const doc = JSON.parse(r.text) as { status: number; code: string; meta: unknown };
    expect(doc.status).toBe(r.status);
    expect(doc.meta).toEqual(META);
    expect(r.text).not.toMatch(/at .*\.(js|ts):\d+/); // never a stack trace
  }
  cases += 1;
}

describe('hostile input to every JSON endpoint never gets a 5xx', () => {
  it('schema-shaped bodies with wrong types and odd values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), schemaShapedBody, async (i, body) => {
        const target = targets[i]!;
        expectHandled(await post(target.url, JSON.stringify(body)), target.name);
      }),
      { numRuns: 300, seed: 694 },
    );
  });
  it('arbitrary JSON values and deep nesting', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), fc.jsonValue({ maxDepth: 8 }), async (i, value) => {
        expectHandled(await post(targets[i]!.url, JSON.stringify(value)), targets[i]!.name);
      }),
      { numRuns: 200, seed: 695 },
    );
    for (const target of targets) expectHandled(await post(target.url, DEEPLY_NESTED_JSON), `${target.name}, nesting 5000 deep`);
  });
  it('duplicate keys, invalid UTF-8, truncated and non-JSON bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ maxLength: 200 }), async (i, bytes) => {
        expectHandled(await post(targets[i]!.url, bytes), targets[i]!.name);
      }),
      { numRuns: 150, seed: 696 },
    );
    for (const target of targets) for (const body of MALFORMED_JSON_BODIES) expectHandled(await post(target.url, body), target.name);
  });
  it('odd characters and traversal in path segments are refused with 404, never reaching storage', async () => {
    for (const path of HOSTILE_API_PATHS) {
      const r = await api('GET', `${t.url}${path}`);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      cases += 1;
    }
  });
});
