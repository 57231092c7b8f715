/**
 * Hostile names and identifiers (PEP 694 "Errors", "Create a File Upload Session", "Publishing
 * Session Token"): file names built to escape the storage root or to fool a reader are refused
 * with a 400 problem naming the file, and never reach storage; hostile session IDs, file IDs and
 * stage tokens in URLs get 404; and a 404 does not tell which part of a URL was wrong.
 */
import { request } from 'node:http';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tally, TEST_TOKENS, testStoreIsPostgres, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, sha256, startServer, uploadFile } from './helpers.js';

let t: TestServer;
let session: Awaited<ReturnType<typeof createSession>>;
let other: Awaited<ReturnType<typeof createSession>>;
let file: Awaited<ReturnType<typeof createFile>>;
let completed: Awaited<ReturnType<typeof uploadFile>>;
beforeAll(async () => {
  t = await startServer({ config: { index: {} } });
  session = await createSession(t.url, 'hostile-target', '1.0');
  other = await createSession(t.url, 'hostile-other', '1.0');
  file = await createFile(session, 'hostile_target-1.0.tar.gz', Buffer.from('pending bytes'));
  completed = await uploadFile(other, 'hostile_other-1.0.tar.gz', Buffer.from('other bytes'));
});
afterAll(async () => t.close());

const MARK = 'hostilemark';
const HOSTILE_FILENAMES: readonly string[] = [
  `../${MARK}-1.0.tar.gz`,
  `../../../../../../tmp/${MARK}-1.0.tar.gz`,
  `/tmp/${MARK}-1.0.tar.gz`,
  `..\\..\\${MARK}-1.0.tar.gz`,
  `%2e%2e%2f${MARK}-1.0.tar.gz`,
  `%2e%2e/${MARK}-1.0.tar.gz`,
  `hostile_target-1.0.tar.gz%00.whl`,
  `${MARK}\u0000-1.0.tar.gz`,
  `hostile_target-1.0.tar.gz\u0000../../${MARK}`,
  'hostile_target-1.0.tar.gz/',
  'hostile_target-1.0.tar.gz/..',
  '.',
  '..',
  '',
  'hostile_target-1.0.tar.gz\r\nX-Injected: 1',
  // Unicode look-alikes: fullwidth letters, U+2215 DIVISION SLASH, U+2044 FRACTION SLASH, Cyrillic "о".
  'ｈｏｓｔｉｌｅ_target-1.0.tar.gz',
  'hostile_target-１.０.tar.gz',
  `..\u2215..\u2215${MARK}-1.0.tar.gz`,
  `hostile_target\u22151.0.tar.gz`,
  `..\u2044${MARK}-1.0.tar.gz`,
  'h\u043estile_target-1.0.tar.gz',
  // Right-to-left override ("...gz.exe" shown reversed), zero-width and BOM characters.
  'hostile_target-1.0\u202eexe.tar.gz',
  '\u202ehostile_target-1.0.tar.gz',
  'hostile\u200btarget-1.0.tar.gz',
  '\ufeffhostile_target-1.0.tar.gz',
  'hostile_target-1.0.tar.gz\u2028',
  // Very long: one path component past 255 bytes, and a name of 60 000 characters.
  `hostile_target-1.0-py3-none-${'x'.repeat(300)}.whl`,
  `hostile_target-1.0.${'0'.repeat(60_000)}.tar.gz`,
  `hostile_target-1.0-py3-none-any${'ｘ'.repeat(100)}.whl`,
  // Device names and stream syntax of other platforms.
  'CON',
  'hostile_target-1.0.tar.gz:stream',
  'hostile_target-1.0.tar.gz::$DATA',
];

/** How a message quotes the name (see core's `show`): JSON, cut at 100, invisible characters escaped. */
const quoted = (name: string) =>
  JSON.stringify(name.slice(0, 40))
    .slice(0, -1)
    .replace(/[\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Every file under `dir`, relative to it. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else out.push(relative(t.dataDir, path));
  }
  return out;
}

/** A raw request: unlike fetch, the path goes out as written (no dot-segment removal). */
function raw(
  method: string,
  path: string,
  token: string | null = TEST_TOKENS.alice,
  body?: string,
): Promise<{ status: number; type: string | undefined; body: any; text: string }> {
  const { hostname, port } = new URL(t.origin);
  return new Promise((resolveP, reject) => {
    const req = request({
      host: hostname,
      port,
      method,
      path,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined
          ? { 'content-type': 'application/vnd.pypi.upload.v2+json', 'content-length': String(Buffer.byteLength(body)) }
          : {}),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: any;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolveP({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: parsed, text });
      });
    });
    req.end(body);
  });
}

describe('hostile file names (PEP 694 "Create a File Upload Session": filename MUST be a valid sdist or wheel name)', () => {
  it('each is refused with 400 problem+json naming the file, and nothing reaches storage', async () => {
    const before = walk(t.dataDir);
    const bucketBefore = await t.bucket?.objects();
    for (const filename of HOSTILE_FILENAMES) {
      const what = `filename ${JSON.stringify(filename.slice(0, 80))}`;
      const res = await api('POST', session.links.upload!, {
        body: { meta: META, filename, size: 4, hashes: { sha256: sha256(Buffer.from('evil')) }, mechanism: 'http-post-bytes' },
      });
      expect(res.status, `${what}: ${JSON.stringify(res.body).slice(0, 300)}`).toBe(400);
      expect(res.headers.get('content-type'), what).toBe('application/problem+json');
      expect(res.body.errors?.[0]?.source, what).toBe('/filename');
      if (filename === '' || filename.length > 1000) {
        // Caught by the request schema's length bounds, which name the member rather than quote it.
        expect(res.body.code, what).toBe('invalid-body');
      } else {
        expect(['invalid-filename', 'filename-mismatch'], what).toContain(res.body.code);
        expect(res.body.detail, what).toContain(`The file name ${quoted(filename)}`);
      }
      // Nothing in the message can reorder, hide or break the text a reader sees.
      // eslint-disable-next-line no-control-regex -- the control characters are what must not appear
      expect(res.body.detail, what).not.toMatch(/[\u0000-\u001f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/);
      expect(res.body.detail.length, what).toBeLessThan(500);
    }
    // The blob store holds exactly what it held: nothing new, nothing outside its root.
    const after = walk(t.dataDir);
    expect(after.filter((p) => p.startsWith('blobs/') || p.startsWith('tmp/')).sort()).toEqual(
      before.filter((p) => p.startsWith('blobs/') || p.startsWith('tmp/')).sort(),
    );
    // ... and, on S3 (PEP694_TEST_BLOBS=s3), the bucket holds what it held.
    expect(await t.bucket?.objects()).toEqual(bucketBefore);
    for (const p of after) {
      expect(p).toMatch(/^(pep694\.sqlite(-wal|-shm)?|tokens\.json|blobs\/(staging|files)\/[A-Za-z0-9_-]{22}|tmp\/[0-9a-f]{32}\.tmp)$/);
    }
    for (const dir of [tmpdir(), resolve(t.dataDir, '..'), t.dataDir]) {
      expect(
        readdirSync(dir).filter((n) => n.includes(MARK)),
        dir,
      ).toEqual([]);
    }
    for (const name of HOSTILE_FILENAMES.filter((n) => n.includes(MARK) && !n.includes('\u0000'))) {
      for (const base of ['blobs/staging', 'blobs/files', 'blobs', 'tmp']) expect(existsSync(resolve(t.dataDir, base, name))).toBe(false);
    }
    // The same endpoint still takes a good name (so the refusals above are about the names).
    const good = await createFile(session, 'hostile_target-1.0-py3-none-any.whl', Buffer.from('good'));
    expect(good.status).toBe('pending');
    tally('fuzz cases', HOSTILE_FILENAMES.length);
  });
});

const HOSTILE_IDS: readonly string[] = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F..%2F..%2Fetc%2Fpasswd',
  '..%2f..%2f..%2ftmp',
  '%00',
  'a%00b',
  '%EF%BD%86%EF%BD%8F%EF%BD%8F', // fullwidth "ｆｏｏ"
  '..%E2%88%95..%E2%88%95etc', // U+2215
  '%E2%80%AEgnp.exe', // RTL override
  `${'x'.repeat(4000)}`,
  "'%20OR%20'1'%3D'1",
  '%2A',
  '%25',
  'AAAAAAAAAAAAAAAAAAAAAA', // the shape of a real ID, 22 base64url characters
];

describe('hostile IDs and tokens in URLs get 404 problem+json, and a 404 does not tell which part was wrong', () => {
  /** Normalizes a problem body for comparison (an `instance` member would name the URL). */
  const shape = (body: any) => {
    const { instance: _instance, ...rest } = body ?? {};
    return JSON.stringify(rest);
  };
  const root = () => new URL(t.url).pathname;
  const sessionId = () => session.links.session!.split('/').pop()!;
  const fileId = () => file.links['file-upload-session']!.split('/').pop()!;
  const completedId = () => completed.links['file-upload-session']!.split('/').pop()!;
  const token = () => session['session-token'] as string;
  const otherToken = () => other['session-token'] as string;
  const fileUrlPath = (id: string) => new URL(file.mechanism.file_url).pathname.replace(fileId(), id);

  const createBody = JSON.stringify({
    meta: META,
    filename: 'hostile_target-1.0-py2-none-any.whl',
    size: 1,
    hashes: { sha256: '0'.repeat(64) },
    mechanism: 'http-post-bytes',
  });
  const metaBody = JSON.stringify({ meta: META });
  const extendBody = JSON.stringify({ meta: META, 'extend-for': 60 });
  type Route = { name: string; method: string; path: (id: string) => string; body?: string; real: () => string };
  const routes: Route[] = [
    { name: 'session status', method: 'GET', path: (id) => `${root()}sessions/${id}`, real: sessionId },
    { name: 'session cancel', method: 'DELETE', path: (id) => `${root()}sessions/${id}`, real: sessionId },
    { name: 'create file', method: 'POST', path: (id) => `${root()}sessions/${id}/files`, body: createBody, real: sessionId },
    { name: 'publish', method: 'POST', path: (id) => `${root()}sessions/${id}/publish`, body: metaBody, real: sessionId },
    { name: 'session extend', method: 'POST', path: (id) => `${root()}sessions/${id}/extend`, body: extendBody, real: sessionId },
    { name: 'file status', method: 'GET', path: (id) => `${root()}files/${id}`, real: fileId },
    { name: 'file delete', method: 'DELETE', path: (id) => `${root()}files/${id}`, real: fileId },
    { name: 'file complete', method: 'POST', path: (id) => `${root()}files/${id}/complete`, body: metaBody, real: fileId },
    { name: 'file extend', method: 'POST', path: (id) => `${root()}files/${id}/extend`, body: extendBody, real: fileId },
    { name: 'http-post-bytes file_url', method: 'POST', path: fileUrlPath, body: 'abcd', real: fileId },
    { name: 'staged file link (token)', method: 'GET', path: (tok) => `${root()}stage/${tok}/files/${fileId()}`, real: token },
    { name: 'staged file link (file id)', method: 'GET', path: (id) => `${root()}stage/${token()}/files/${id}`, real: fileId },
    { name: 'stage preview index', method: 'GET', path: (tok) => `/stage/${tok}/`, real: token },
    { name: 'stage preview project', method: 'GET', path: (tok) => `/stage/${tok}/hostile-target/`, real: token },
  ];

  it('every hostile value in every place: 404, the same body for every wrong value and every principal', async () => {
    let cases = 0;
    for (const route of routes) {
      const bodies = new Set<string>();
      for (const id of HOSTILE_IDS) {
        for (const who of [TEST_TOKENS.alice, TEST_TOKENS.bob]) {
          const res = await raw(route.method, route.path(id), who, route.body);
          const what = `${route.name} ${route.method} ${route.path(id).slice(0, 120)}`;
          expect(res.status, `${what}: ${res.text.slice(0, 300)}`).toBe(404);
          expect(res.type, what).toBe('application/problem+json');
          expect(res.body.code, what).toBe('not-found');
          expect(res.text, what).not.toMatch(/at .*\.(js|ts):\d+|SQLITE|ENOENT|\/tmp\//);
          bodies.add(shape(res.body));
          cases += 1;
        }
      }
      // Whether the value was a path trick, a near miss or a plausible ID, the answer is one and the same.
      expect([...bodies], route.name).toHaveLength(1);
      // And the real value is served (so these 404s are about the values).
      const ok = await raw(
        route.method === 'GET' ? 'GET' : 'GET',
        route
          .path(route.real())
          .replace(/\/(publish|extend|complete)$/, '')
          .replace(/\/files$/, ''),
      );
      if (route.name !== 'http-post-bytes file_url')
        expect(ok.status, `${route.name} with the real value: ${ok.text.slice(0, 200)}`).toBe(200);
    }
    tally('fuzz cases', cases);
  });

  it('the staged file link: wrong token, wrong file, and a file of another session give identical 404s', async () => {
    const variants = {
      'wrong token': `${root()}stage/${otherToken().replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}/files/${fileId()}`,
      'token of another session': `${root()}stage/${otherToken()}/files/${fileId()}`,
      'file of another session': `${root()}stage/${token()}/files/${completedId()}`,
      'no such file': `${root()}stage/${token()}/files/${fileId().replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`,
      'session id for token': `${root()}stage/${sessionId()}/files/${fileId()}`,
    };
    const bodies = new Map<string, string>();
    for (const [name, path] of Object.entries(variants)) {
      for (const who of [TEST_TOKENS.alice, TEST_TOKENS.bob, TEST_TOKENS.carol]) {
        const res = await raw('GET', path, who);
        expect(res.status, `${name}: ${res.text}`).toBe(404);
        bodies.set(`${name} as ${who.split('-')[0]}`, shape(res.body));
      }
    }
    expect(new Set(bodies.values()).size, JSON.stringify(Object.fromEntries(bodies), null, 1)).toBe(1);
    // The right token and file: served to an authorized principal; a principal without upload
    // permission gets 403, as PEP 694 "Authentication and Authorization" requires of session URLs.
    expect((await raw('GET', `${root()}stage/${token()}/files/${fileId()}`)).status).toBe(200);
    expect((await raw('GET', `${root()}stage/${token()}/files/${fileId()}`, TEST_TOKENS.carol)).status).toBe(403);
    tally('fuzz cases', bodies.size + 2);
  });

  it('wrong session ID, wrong file ID and a file ID used as a session ID: identical 404 bodies per route, for every principal', async () => {
    const near = (id: string) => id.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    const pairs: [string, string][] = [
      ['session status', `${root()}sessions/${near(sessionId())}`],
      ['session status by a file id', `${root()}sessions/${fileId()}`],
      ['session status by a stage token', `${root()}sessions/${token()}`],
    ];
    const filePairs: [string, string][] = [
      ['file status', `${root()}files/${near(fileId())}`],
      ['file status by a session id', `${root()}files/${sessionId()}`],
      ['file status by a stage token', `${root()}files/${token()}`],
    ];
    for (const group of [pairs, filePairs]) {
      const bodies = new Set<string>();
      for (const [name, path] of group) {
        for (const who of [TEST_TOKENS.alice, TEST_TOKENS.bob, TEST_TOKENS.carol]) {
          const res = await raw('GET', path, who);
          expect(res.status, `${name}: ${res.text}`).toBe(404);
          bodies.add(shape(res.body));
        }
      }
      expect(bodies.size).toBe(1);
    }
    tally('fuzz cases', (pairs.length + filePairs.length) * 3);
  });
});

// Guard against a vacuous walk: the data directory exists and has the SQLite file.
it('the storage walk sees the data directory', async () => {
  // On PostgreSQL (PEP694_TEST_STORE=postgres) the sessions are not in the data directory.
  if (!testStoreIsPostgres()) expect(statSync(join(t.dataDir, 'pep694.sqlite')).isFile()).toBe(true);
  // On S3 (PEP694_TEST_BLOBS=s3) the bytes are in the bucket: blob keys are its pointers' names.
  const stored = t.bucket ? await t.bucket.objects() : walk(t.dataDir);
  expect(stored.some((p) => p.startsWith('blobs/files/'))).toBe(true);
});
