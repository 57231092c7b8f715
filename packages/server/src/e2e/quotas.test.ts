/**
 * Issue #21: the per-principal quota on staged, unpublished bytes (finding 6) and the limit on new
 * project names per time window (low finding), over loopback HTTP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { tally, TEST_TOKENS, type TestServer } from '../testing/index.js';
import { api, createSession, META, startServer, uploadFile } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const GiB = 1024 ** 3;
const declare = (session: { links: Record<string, string> }, filename: string, size: number, token: string = TEST_TOKENS.alice) =>
  api('POST', session.links.upload!, {
    token,
    body: { meta: META, filename, size, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' },
  });

describe('quota on staged bytes (PEP 694 "Create a File Upload Session": quota checks, 409 when the upload cannot proceed)', () => {
  it('the finding: file sessions declaring 2 GiB each stop at the default 10 GiB quota', async () => {
    t = await startServer();
    const s = await createSession(t.url, 'quota-default', '1.0');
    for (let i = 0; i < 5; i++) expect((await declare(s, `quota_default-1.0-py3-none-linux_${i}.whl`, 2 * GiB)).status).toBe(202);
    const sixth = await declare(s, 'quota_default-1.0-py3-none-linux_5.whl', 2 * GiB);
    expect(sixth.status).toBe(409);
    expect(sixth.headers.get('content-type')).toBe('application/problem+json');
    expect(sixth.body).toMatchObject({ code: 'quota-exceeded', quota: 10 * GiB, used: 10 * GiB, size: 2 * GiB });
    expect(sixth.body.detail).toContain(`the quota is ${10 * GiB} bytes (10.00 GiB), and ${10 * GiB} bytes (10.00 GiB) are in use`);
    expect(sixth.body.errors).toEqual([{ source: '/size', message: `over the quota by ${2 * GiB} bytes` }]);
    // Another publishing session of the same principal shares the quota.
    const other = await createSession(t.url, 'quota-default-2', '1.0');
    expect((await declare(other, 'quota_default_2-1.0.tar.gz', 1)).body.code).toBe('quota-exceeded');
    tally('exhaustion cases', 2);
  });

  it('is configurable, per principal, and released by delete, cancel and publish', async () => {
    t = await startServer({ config: { limits: { maxStagedBytesPerPrincipal: 3000 } } });
    const s = await createSession(t.url, 'quota-small', '1.0');
    const first = await declare(s, 'quota_small-1.0.tar.gz', 2000);
    expect(first.status).toBe(202);
    const over = await declare(s, 'quota_small-1.0-py3-none-any.whl', 2000);
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ code: 'quota-exceeded', quota: 3000, used: 2000, size: 2000 });
    // bob has his own quota.
    const bobs = await createSession(t.url, 'bob-quota', '1.0', TEST_TOKENS.bob);
    expect((await declare(bobs, 'bob_quota-1.0.tar.gz', 3000, TEST_TOKENS.bob)).status).toBe(202);

    // Delete releases.
    expect((await api('DELETE', first.headers.get('location')!)).status).toBe(204);
    expect((await declare(s, 'quota_small-1.0-py3-none-any.whl', 2000)).status).toBe(202);
    // Cancel releases.
    expect((await api('DELETE', s.links.session!)).status).toBe(204);
    const again = await createSession(t.url, 'quota-small', '2.0');
    // Publish releases: 2500 bytes uploaded and published, then 2500 more fit.
    await uploadFile(again, 'quota_small-2.0.tar.gz', Buffer.alloc(2500, 1));
    expect((await declare(again, 'quota_small-2.0-py3-none-any.whl', 1000)).body.code).toBe('quota-exceeded');
    expect((await api('POST', again.links.publish!, { body: { meta: META } })).status).toBe(201);
    const third = await createSession(t.url, 'quota-small', '3.0');
    expect((await declare(third, 'quota_small-3.0.tar.gz', 2500)).status).toBe(202);
    tally('exhaustion cases', 4);
  });
});

describe('new project names per principal (PEP 694 "Name squatting potential": rate limiting left to the index)', () => {
  it('429 rate-limited with Retry-After past the limit; empty sessions publish and register names', async () => {
    t = await startServer({ config: { limits: { maxNewProjectsPerWindow: 2, newProjectsWindow: 600 } } });
    // PEP 694 FAQ: publishing a session without files registers the name (the version is ignored).
    const empty = await createSession(t.url, 'squat-1', '0.0.0a0');
    const published = await api('POST', empty.links.publish!, { body: { meta: META } });
    expect(published.status).toBe(201);
    expect(published.body.status).toBe('published');
    const reserved = await createSession(t.url, 'squat-2', '1.0');

    const third = await api('POST', t.url, { body: { meta: META, name: 'squat-3', version: '1.0' } });
    expect(third.status).toBe(429);
    expect(third.headers.get('content-type')).toBe('application/problem+json');
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter > 590 && retryAfter <= 600).toBe(true);
    expect(third.body).toMatchObject({ code: 'rate-limited', limit: 2, registered: 1, reserved: 1 });
    expect(third.body.detail).toMatch(
      /at most 2 new project names per 600 s; you registered 1 in that time and your live sessions reserve 1/,
    );

    // A new release of a registered name is no new name; another principal has its own allowance.
    await createSession(t.url, 'squat-1', '1.0');
    await createSession(t.url, 'bob-squat', '1.0', TEST_TOKENS.bob);
    // Canceling a first-release session gives its place back.
    expect((await api('DELETE', reserved.links.session!)).status).toBe(204);
    await createSession(t.url, 'squat-3', '1.0');
    tally('exhaustion cases', 2);
  });

  it('is on by default: 20 new names per hour', async () => {
    // The test kit turns the limit off unless a test sets it; undefined leaves it to the default.
    t = await startServer({ config: { limits: { maxNewProjectsPerWindow: undefined } } });
    for (let i = 0; i < 20; i++) await createSession(t.url, `default-limit-${i}`, '1.0');
    const next = await api('POST', t.url, { body: { meta: META, name: 'default-limit-20', version: '1.0' } });
    expect(next.status).toBe(429);
    expect(next.body.limit).toBe(20);
  });
});

describe('file upload sessions per publishing session, deleted ones included (issue #21, the class of finding 6)', () => {
  it('a create-and-delete loop stops at limits.maxFileSessionsPerSession; the deleted ones keep their status URL', async () => {
    t = await startServer({ config: { limits: { maxFileSessionsPerSession: 3 } } });
    const s = await createSession(t.url, 'row-loop', '1.0');
    const deleted: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await declare(s, 'row_loop-1.0.tar.gz', 10);
      expect(created.status).toBe(202);
      const location = created.headers.get('location')!;
      expect((await api('DELETE', location)).status).toBe(204);
      deleted.push(location);
    }
    const fourth = await declare(s, 'row_loop-1.0.tar.gz', 10);
    expect(fourth.status).toBe(409);
    expect(fourth.body).toMatchObject({ code: 'limit-exceeded' });
    expect(fourth.body.detail).toContain('at most 3 file upload sessions, deleted and replaced ones included');
    // PEP 694 "File Upload Session States": a deleted file's own status URL still reports canceled.
    for (const location of deleted) expect((await api('GET', location)).body).toMatchObject({ status: 'canceled' });
    // Another publishing session has its own count.
    const other = await createSession(t.url, 'row-loop-2', '1.0');
    expect((await declare(other, 'row_loop_2-1.0.tar.gz', 10)).status).toBe(202);
    tally('hostile cases');
  });
});
