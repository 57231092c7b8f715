import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { tally, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, startServer, TEST_TOKENS } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('limits give a clear problem+json', () => {
  it('files per session: 409 limit-exceeded', async () => {
    t = await startServer({ config: { limits: { maxFilesPerSession: 2 } } });
    const s = await createSession(t.url, 'many-files', '1.0');
    await createFile(s, 'many_files-1.0.tar.gz', Buffer.from('a'));
    await createFile(s, 'many_files-1.0-py3-none-any.whl', Buffer.from('b'));
    const third = await api('POST', s.links.upload!, {
      body: {
        meta: META,
        filename: 'many_files-1.0-py2-none-any.whl',
        size: 1,
        hashes: { sha256: '0'.repeat(64) },
        mechanism: 'http-post-bytes',
      },
    });
    expect(third.status).toBe(409);
    expect(third.headers.get('content-type')).toBe('application/problem+json');
    expect(third.body.code).toBe('limit-exceeded');
    expect(third.body.detail).toMatch(/at most 2 files/);
    // Deleting a file frees its slot.
    const files = (await api('GET', s.links.session!)).body.files as Record<string, { link: string }>;
    expect((await api('DELETE', files['many_files-1.0.tar.gz']!.link)).status).toBe(204);
    await createFile(s, 'many_files-1.0-py2-none-any.whl', Buffer.from('c'));
    tally('exhaustion cases', 2);
  });
  it('live sessions per principal: 409 limit-exceeded, freed by cancel', async () => {
    t = await startServer({ config: { limits: { maxLiveSessionsPerPrincipal: 2 } } });
    const a = await createSession(t.url, 'live-a', '1');
    await createSession(t.url, 'live-b', '1');
    const c = await api('POST', t.url, { body: { meta: META, name: 'live-c', version: '1' } });
    expect(c.status).toBe(409);
    expect(c.headers.get('content-type')).toBe('application/problem+json');
    expect(c.body.code).toBe('limit-exceeded');
    // Another principal has its own allowance.
    await createSession(t.url, 'bob-live', '1', TEST_TOKENS.bob);
    await api('DELETE', a.links.session!);
    await createSession(t.url, 'live-c', '1');
    tally('exhaustion cases', 2);
  });
  it('a JSON body that stalls gets 408 request-timeout', async () => {
    t = await startServer({ config: { limits: { jsonBodyTimeout: 200 } } });
    const { hostname, port } = new URL(t.url);
    const response = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), hostname, () => {
        sock.write(
          `POST /upload/ HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer alice-token-0123456789abcdef\r\n` +
            `Content-Type: application/vnd.pypi.upload.v2+json\r\nContent-Length: 100\r\n\r\n{"meta":`,
        );
      });
      let data = '';
      sock.on('data', (d) => (data += d.toString()));
      sock.on('end', () => resolve(data));
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
      setTimeout(() => sock.destroy(), 5000);
    });
    expect(response).toMatch(/^HTTP\/1\.1 408/);
    expect(response).toMatch(/application\/problem\+json/);
    expect(response).toMatch(/"code":"request-timeout"/);
  });
  it('malformed percent-encoding in a path gets a 4xx problem, not a 500', async () => {
    t = await startServer();
    const res = await api('GET', `${t.url}sessions/%E0%A4%A`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
