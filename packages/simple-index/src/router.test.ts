import { createHash } from 'node:crypto';
import { request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import express, { type ErrorRequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseDistributionFilename,
  ProblemError,
  releaseKey,
  toProblemDocument,
  type FileUploadRecord,
  type PublishedFile,
  type PublishingSessionRecord,
} from '@pep694/core';
import { publishedIndexRouter, stagePreviewRouter } from './index.js';
import type { IndexStore } from './view.js';
import { ProjectDetailSchema, ProjectListSchema, readHtml } from './test-support.js';

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';

// ---- an in-memory store and blob store ---------------------------------------------------------

const blobs = new Map<string, Buffer>();
const published: PublishedFile[] = [];
const projects: { project: string; displayName: string }[] = [];
const sessions: PublishingSessionRecord[] = [];
const files: FileUploadRecord[] = [];
const publishedMetadata = new Map<string, Uint8Array>();
/** One change counter for everything: any change here invalidates every cached page. */
let changes = 0;

const store: IndexStore = {
  async listPublishedProjects() {
    return projects;
  },
  async listPublishedFiles(project) {
    return published.filter((f) => f.project === project);
  },
  async getPublishedFile(project, filename) {
    return published.find((f) => f.project === project && f.filename === filename);
  },
  async getSessionByStageToken(token) {
    return sessions.find((s) => s.stageToken === token);
  },
  async listStagedFiles(sessionId) {
    return files.filter((f) => f.sessionId === sessionId && f.status === 'completed');
  },
  async getPublishedCoreMetadata(project, filename) {
    return publishedMetadata.get(`${project}\0${filename}`);
  },
  async getFile(id) {
    return files.find((f) => f.id === id);
  },
  async indexVersion() {
    return changes;
  },
};

const blobStore = {
  async read(key: string, range?: { start: number; end: number }) {
    const b = blobs.get(key);
    if (!b) throw new Error(`no blob ${key}`);
    return Readable.from([range ? b.subarray(range.start, range.end + 1) : b]);
  },
};

const WHEEL = Buffer.from('PK-not-really-a-wheel-but-bytes-'.repeat(40));
const META = Buffer.from('Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\nRequires-Python: <3.14,>=3.7\n');
const SDIST = Buffer.from('sdist-bytes'.repeat(10));

function publish(
  project: string,
  displayName: string,
  version: string,
  filename: string,
  bytes: Buffer,
  { coreMetadata, ...extra }: Partial<PublishedFile> & { coreMetadata?: Uint8Array } = {},
) {
  const key = `files/${filename}`;
  blobs.set(key, bytes);
  changes += 1;
  if (coreMetadata) publishedMetadata.set(`${project}\0${filename}`, coreMetadata);
  if (!projects.some((p) => p.project === project)) projects.push({ project, displayName });
  published.push({
    project,
    displayName,
    version,
    filename,
    size: bytes.length,
    hashes: { sha256: sha256(bytes) },
    blobKey: key,
    publishedAt: new Date('2030-08-01T12:00:00.123Z'),
    sessionId: 's',
    fileId: filename,
    coreMetadataSha256: coreMetadata ? sha256(coreMetadata) : null,
    requiresPython: null,
    ...extra,
  });
}

const NOW = Date.now();
function session(id: string, token: string, status: PublishingSessionRecord['status'], expiresIn = 3600_000): PublishingSessionRecord {
  const s: PublishingSessionRecord = {
    id,
    project: 'stage-pkg',
    displayName: 'Stage_Pkg',
    version: '2.0',
    releaseKey: releaseKey('2.0'),
    status,
    stageToken: token,
    createdBy: 'alice',
    createdAt: new Date(NOW),
    expiresAt: new Date(NOW + expiresIn),
    endedAt: null,
    reservesName: false,
    notices: [],
  };
  sessions.push(s);
  return s;
}

function stageFile(
  sessionId: string,
  filename: string,
  status: FileUploadRecord['status'],
  bytes: Buffer,
  coreMetadata: Uint8Array | null = null,
): void {
  const key = `files/${sessionId}/${filename}`;
  blobs.set(key, bytes);
  changes += 1;
  files.push({
    id: `${sessionId}-${filename}`,
    sessionId,
    filename,
    size: bytes.length,
    hashes: { sha256: sha256(bytes) },
    mechanism: 'http-post-bytes',
    status,
    createdAt: new Date('2030-08-01T12:00:00Z'),
    expiresAt: new Date(NOW + 3600_000),
    notices: [],
    blobKey: status === 'completed' ? key : null,
    attestations: null,
    instructions: null,
    coreMetadata,
    requiresPython: coreMetadata ? '>=3.8' : null,
    coreMetadataSha256: coreMetadata ? sha256(coreMetadata) : null,
  });
}

const TOKEN = 'tok_0123456789abcdefABCD';
const PUBLISHED_TOKEN = 'pub_0123456789abcdefABCD';
const CANCELED_TOKEN = 'can_0123456789abcdefABCD';
const EXPIRED_TOKEN = 'exp_0123456789abcdefABCD';

publish('demo-pkg', 'Demo_Pkg', '1.0.0', 'demo_pkg-1.0.0-py3-none-any.whl', WHEEL, {
  coreMetadata: new Uint8Array(META),
  requiresPython: '<3.14,>=3.7',
});
// The validator returns PKG-INFO for sdists too; it is not served (PEP 658 metadata is for wheels).
publish('demo-pkg', 'Demo_Pkg', '1.0.0', 'demo_pkg-1.0.0.tar.gz', SDIST, { coreMetadata: new Uint8Array(META) });
publish('demo-pkg', 'Demo_Pkg', '1.0+local.1', 'demo_pkg-1.0+local.1.tar.gz', SDIST, {
  hashes: { sha512: createHash('sha512').update(SDIST).digest('hex') },
});
// A published file whose bytes are gone (a storage fault).
publish('lost-pkg', 'lost-pkg', '1.0', 'lost_pkg-1.0.tar.gz', SDIST);
blobs.delete('files/lost_pkg-1.0.tar.gz');
// A name reserved by a first-release session, with nothing published: invisible.
const reserved = 'reserved-only';

const open = session('s1', TOKEN, 'open');
stageFile(open.id, 'stage_pkg-2.0-py3-none-any.whl', 'completed', WHEEL, new Uint8Array(META));
stageFile(open.id, 'stage_pkg-2.0.tar.gz', 'pending', SDIST);
stageFile(open.id, 'stage_pkg-2.0-cp311-none-any.whl', 'error', SDIST);
stageFile(session('s2', PUBLISHED_TOKEN, 'published').id, 'stage_pkg-2.0-py3-none-any.whl', 'completed', WHEEL);
stageFile(session('s3', CANCELED_TOKEN, 'canceled').id, 'stage_pkg-2.0-py3-none-any.whl', 'completed', WHEEL);
stageFile(session('s4', EXPIRED_TOKEN, 'open', -1000).id, 'stage_pkg-2.0-py3-none-any.whl', 'completed', WHEEL);

// ---- the app ------------------------------------------------------------------------------------

let server: Server;
let origin: string;
beforeAll(async () => {
  const app = express();
  app.set('etag', false);
  app.use('/simple', publishedIndexRouter({ store, blobs: blobStore }));
  app.use('/stage', stagePreviewRouter({ store, blobs: blobStore }));
  const problems: ErrorRequestHandler = (err, _req, res, _next) => {
    const p = ProblemError.is(err) ? err : new ProblemError('internal-error', 'boom');
    for (const [k, v] of Object.entries(p.headers)) res.setHeader(k, v);
    res
      .status(p.status)
      .type('application/problem+json')
      .send(JSON.stringify(toProblemDocument(p)));
  };
  app.use(problems);
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  fetch(`${origin}${path}`, { method, headers, redirect: 'manual' });
async function expectProblem(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { status: number; code: string; detail: string };
  expect(body.status).toBe(status);
  return body;
}

// ---- tests ----------------------------------------------------------------------------------------

describe('PEP 691 JSON serialization, validated against the PEP 691/700/714 schema', () => {
  it('project list', async () => {
    const res = await get('/simple/', { accept: PIP_ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.pypi.simple.v1+json');
    const body = ProjectListSchema.parse(await res.json());
    expect(body.projects).toEqual([{ name: 'Demo_Pkg' }, { name: 'lost-pkg' }]);
    expect(body.meta['api-version']).toBe('1.3');
  });
  it('project detail: hashes, size, upload-time, requires-python, core-metadata, versions', async () => {
    const res = await get('/simple/demo-pkg/', { accept: PIP_ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.pypi.simple.v1+json');
    expect(res.headers.get('vary')).toBe('Accept');
    const body = ProjectDetailSchema.parse(await res.json());
    expect(body.name).toBe('demo-pkg');
    // Every file belongs to one of the versions (PEP 700).
    const keys = new Set(body.versions.map((v) => releaseKey(v)));
    for (const f of body.files) expect(keys.has(releaseKey(parseDistributionFilename(f.filename).version))).toBe(true);
    expect(body.versions).toEqual(['1.0.0', '1.0+local.1']);
    const wheel = body.files.find((f) => f.filename.endsWith('.whl'))!;
    expect(wheel).toMatchObject({
      url: 'demo_pkg-1.0.0-py3-none-any.whl',
      hashes: { sha256: sha256(WHEEL) },
      'requires-python': '<3.14,>=3.7',
      'core-metadata': { sha256: sha256(META) },
      size: WHEEL.length,
      'upload-time': '2030-08-01T12:00:00.123Z',
    });
    // pip 23.0.1 crashes on a dict-valued dist-info-metadata in JSON: never sent.
    expect(wheel['dist-info-metadata']).toBeUndefined();
    expect(body.files.find((f) => f.filename.endsWith('.tar.gz') && !f.filename.includes('+'))!['core-metadata']).toBeUndefined();
    // Local versions: `+` is percent-encoded in the URL.
    expect(body.files.find((f) => f.filename.includes('+'))!.url).toBe('demo_pkg-1.0%2Blocal.1.tar.gz');
  });
});

describe('PEP 503 HTML serialization, parsed into the links pip reads', () => {
  it('project list: one anchor per project, to its normalized URL', async () => {
    const res = await get('/simple/', { accept: 'text/html' });
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = readHtml(await res.text());
    expect(html.anchors.map((a) => [a.href, a.text])).toEqual([
      ['demo-pkg/', 'Demo_Pkg'],
      ['lost-pkg/', 'lost-pkg'],
    ]);
    expect(html.meta['pypi:repository-version']).toBe('1.3');
  });
  it('project detail: #sha256 fragments, data-requires-python escaped, data-core-metadata and data-dist-info-metadata', async () => {
    const res = await get('/simple/demo-pkg/', { accept: 'application/vnd.pypi.simple.v1+html' });
    expect(res.headers.get('content-type')).toBe('application/vnd.pypi.simple.v1+html; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('data-requires-python="&lt;3.14,&gt;=3.7"'); // "< and > have to be HTML encoded"
    const { anchors } = readHtml(text);
    expect(anchors).toHaveLength(3);
    const wheel = anchors.find((a) => a.text === 'demo_pkg-1.0.0-py3-none-any.whl')!;
    expect(wheel.href).toBe(`demo_pkg-1.0.0-py3-none-any.whl#sha256=${sha256(WHEEL)}`);
    expect(wheel.attrs['data-requires-python']).toBe('<3.14,>=3.7');
    expect(wheel.attrs['data-core-metadata']).toBe(`sha256=${sha256(META)}`);
    expect(wheel.attrs['data-dist-info-metadata']).toBe(`sha256=${sha256(META)}`);
    // The anchor text is the final path component of the href (PEP 503).
    for (const a of anchors) expect(decodeURIComponent(a.href.split('#')[0]!)).toBe(a.text);
    const local = anchors.find((a) => a.text.includes('+'))!;
    expect(local.href).toBe(`demo_pkg-1.0%2Blocal.1.tar.gz#sha512=${createHash('sha512').update(SDIST).digest('hex')}`);
    expect(local.attrs['data-core-metadata']).toBeUndefined();
  });
});

describe('PEP 691 Version + Format Selection', () => {
  const cases: [string | undefined, string][] = [
    // Absent Accept means */*; PEP 691 lets the server choose, and PEP 503 clients that send none
    // (older pip, mirrors, curl and requests scripts) parse HTML, as PyPI and devpi answer (issue #16).
    [undefined, 'text/html; charset=utf-8'],
    ['*/*', 'text/html; charset=utf-8'],
    ['*/*;q=0.5', 'text/html; charset=utf-8'],
    ['text/html;q=0, */*', 'application/vnd.pypi.simple.v1+json'],
    [PIP_ACCEPT, 'application/vnd.pypi.simple.v1+json'],
    ['text/html', 'text/html; charset=utf-8'],
    ['application/vnd.pypi.simple.v1+html', 'application/vnd.pypi.simple.v1+html; charset=utf-8'],
    ['application/vnd.pypi.simple.latest+json', 'application/vnd.pypi.simple.v1+json'], // MUST answer with the real version
    ['application/vnd.pypi.simple.latest+html', 'application/vnd.pypi.simple.v1+html; charset=utf-8'],
    ['application/vnd.pypi.simple.v1+json;q=0, text/html', 'text/html; charset=utf-8'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text/html; charset=utf-8'], // a browser
    ['text/*', 'text/html; charset=utf-8'],
    ['application/*', 'application/vnd.pypi.simple.v1+json'],
  ];
  for (const [accept, type] of cases) {
    it(`Accept: ${accept ?? '(none)'} → ${type}`, async () => {
      const res = await get('/simple/demo-pkg/', accept === undefined ? {} : { accept });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
    });
  }
  it('a request with no Accept header at all (fetch always sends one) gets PEP 503 HTML, as PyPI answers it', async () => {
    const { status, type, body } = await new Promise<{ status?: number; type?: string; body: string }>((resolve, reject) => {
      const req = httpRequest(`${origin}/simple/demo-pkg/`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(type).toBe('text/html; charset=utf-8');
    expect(readHtml(body).anchors.length).toBeGreaterThan(0);
  });
  it('406 problem+json when nothing acceptable is offered', async () => {
    const body = await expectProblem(
      await get('/simple/demo-pkg/', { accept: 'application/xml, application/vnd.pypi.simple.v2+json' }),
      406,
    );
    expect(body.code).toBe('not-acceptable');
  });
  it('the ?format= URL parameter takes precedence over Accept', async () => {
    const res = await get('/simple/demo-pkg/?format=application/vnd.pypi.simple.v1%2Bhtml', { accept: PIP_ACCEPT });
    expect(res.headers.get('content-type')).toBe('application/vnd.pypi.simple.v1+html; charset=utf-8');
  });
  it('pages carry an ETag; If-None-Match answers 304', async () => {
    const first = await get('/simple/demo-pkg/', { accept: PIP_ACCEPT });
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"/);
    expect((await get('/simple/demo-pkg/', { accept: PIP_ACCEPT, 'if-none-match': etag })).status).toBe(304);
    // Another representation has another ETag.
    expect((await get('/simple/demo-pkg/', { accept: 'text/html', 'if-none-match': etag })).status).toBe(200);
  });
});

describe('PEP 503 URLs: normalized names, trailing slashes, 404s', () => {
  it('non-normalized project URLs redirect (301) to the normalized one', async () => {
    for (const [from, to] of [
      ['/simple/Demo.Pkg/', '/simple/demo-pkg/'],
      ['/simple/DEMO_pkg/', '/simple/demo-pkg/'],
      ['/simple/demo-pkg', '/simple/demo-pkg/'],
      ['/simple/Demo_Pkg', '/simple/demo-pkg/'],
      ['/simple', '/simple/'],
      ['/simple/Demo_Pkg/demo_pkg-1.0.0.tar.gz', '/simple/demo-pkg/demo_pkg-1.0.0.tar.gz'],
    ]) {
      const res = await get(from!);
      expect(res.status, from).toBe(301);
      expect(res.headers.get('location'), from).toBe(to);
    }
  });
  it('redirects carry only the path: an absolute-form request target (RFC 9112 §3.2.2) is never echoed into Location (issue #21)', async () => {
    const { port } = server.address() as AddressInfo;
    const cases: [string, string][] = [
      ['http://evil.example/simple', '/simple/'],
      ['HTTP://evil.example/simple?x=1', '/simple/'],
      ['http://evil.example/simple/Demo_Pkg', '/simple/demo-pkg/'],
      [`http://evil.example/stage/${TOKEN}`, `/stage/${TOKEN}/`],
      ['/simple?next=http://evil.example/', '/simple/'],
    ];
    for (const [target, location] of cases) {
      const head = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (c: string) => {
          text += c;
          if (text.includes('\r\n\r\n')) {
            socket.destroy();
            resolve(text.slice(0, text.indexOf('\r\n\r\n')));
          }
        });
        socket.on('error', reject);
        socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      });
      expect(head, target).toMatch(/^HTTP\/1\.1 301 /);
      expect(/\r\nLocation: ([^\r]*)/i.exec(head)?.[1], target).toBe(location);
    }
  });
  it('a project whose name is only reserved is 404 until its first publish; so are unknown projects and files', async () => {
    for (const path of [
      `/simple/${reserved}/`,
      '/simple/nope/',
      '/simple/demo-pkg/nope-1.0.tar.gz',
      '/simple/demo-pkg/demo_pkg-1.0.0.tar.gz.metadata',
      '/simple/-bad-/',
      '/simple/demo-pkg/a/b',
    ]) {
      const body = await expectProblem(await get(path), 404);
      expect(body.code, path).toBe('not-found');
    }
  });
  it('the index is read-only: 405 with Allow', async () => {
    const res = await get('/simple/demo-pkg/', {}, 'POST');
    await expectProblem(res, 405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('downloads: Content-Type, Content-Length, ETag, ranges (RFC 9110), HEAD', () => {
  const path = '/simple/demo-pkg/demo_pkg-1.0.0-py3-none-any.whl';
  it('GET sends the bytes with the file headers', async () => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('content-length')).toBe(String(WHEEL.length));
    expect(res.headers.get('etag')).toBe(`"sha256-${sha256(WHEEL)}"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await res.arrayBuffer()).equals(WHEEL)).toBe(true);
    const sdist = await get('/simple/demo-pkg/demo_pkg-1.0.0.tar.gz');
    expect(sdist.headers.get('content-type')).toBe('application/gzip');
    expect(sdist.headers.get('content-encoding')).toBeNull();
  });
  it('file names with "+" (local versions) are served percent-encoded', async () => {
    const res = await get('/simple/demo-pkg/demo_pkg-1.0%2Blocal.1.tar.gz');
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"sha512-${createHash('sha512').update(SDIST).digest('hex')}"`);
  });
  it('HEAD: the same headers, no body', async () => {
    const res = await get(path, {}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(WHEEL.length));
    expect(res.headers.get('etag')).toBe(`"sha256-${sha256(WHEEL)}"`);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
  it('single ranges: 206 with Content-Range (first bytes, open-ended, suffix, clipped end)', async () => {
    const n = WHEEL.length;
    for (const [range, start, end] of [
      ['bytes=0-9', 0, 9],
      ['bytes=100-', 100, n - 1],
      ['bytes=-10', n - 10, n - 1],
      ['bytes=5-999999', 5, n - 1],
    ] as const) {
      const res = await get(path, { range });
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${n}`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await res.arrayBuffer()).equals(WHEEL.subarray(start, end + 1))).toBe(true);
    }
    const head = await get(path, { range: 'bytes=0-9' }, 'HEAD');
    expect(head.status).toBe(206);
    expect(head.headers.get('content-length')).toBe('10');
  });
  it('unsatisfiable ranges: 416 problem+json with Content-Range: bytes */size', async () => {
    for (const range of [`bytes=${WHEEL.length}-`, 'bytes=-0']) {
      const res = await get(path, { range });
      const body = await expectProblem(res, 416);
      expect(body.code).toBe('range-not-satisfiable');
      expect(res.headers.get('content-range')).toBe(`bytes */${WHEEL.length}`);
    }
  });
  it('ignored ranges: several ranges, other units, malformed, or an If-Range that does not match send the whole file', async () => {
    const ignored: Record<string, string>[] = [
      { range: 'bytes=0-1,5-6' },
      { range: 'items=0-1' },
      { range: 'bytes=x-y' },
      { range: 'bytes=9-1' },
      { range: 'bytes=0-1', 'if-range': '"other"' },
    ];
    for (const headers of ignored) {
      const res = await get(path, headers);
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(WHEEL.length);
    }
    const matching = await get(path, { range: 'bytes=0-1', 'if-range': `"sha256-${sha256(WHEEL)}"` });
    expect(matching.status).toBe(206);
  });
  it('bytes that cannot be read give a 500 problem before any file header is sent', async () => {
    const res = await get('/simple/lost-pkg/lost_pkg-1.0.tar.gz');
    await expectProblem(res, 500);
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('content-range')).toBeNull();
  });
  it('If-None-Match with the ETag answers 304', async () => {
    expect((await get(path, { 'if-none-match': `"sha256-${sha256(WHEEL)}"` })).status).toBe(304);
  });
});

describe('PEP 658/714: <file>.metadata', () => {
  it('serves the core metadata whose sha256 the pages announce', async () => {
    const res = await get('/simple/demo-pkg/demo_pkg-1.0.0-py3-none-any.whl.metadata');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(META)).toBe(true);
    expect(res.headers.get('etag')).toBe(`"sha256-${sha256(META)}"`);
    const ranged = await get('/simple/demo-pkg/demo_pkg-1.0.0-py3-none-any.whl.metadata', { range: 'bytes=0-15' });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe('Metadata-Version');
  });
});

describe('PEP 694 Staged Previews: /stage/{session-token}/', () => {
  it('lists only the completed files of the session, with the same JSON and HTML', async () => {
    const res = await get(`/stage/${TOKEN}/stage-pkg/`, { accept: PIP_ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const body = ProjectDetailSchema.parse(await res.json());
    expect(body.files.map((f) => f.filename)).toEqual(['stage_pkg-2.0-py3-none-any.whl']);
    expect(body.versions).toEqual(['2.0']);
    expect(body.files[0]!['core-metadata']).toEqual({ sha256: sha256(META) });
    const html = readHtml(await (await get(`/stage/${TOKEN}/stage-pkg/`, { accept: 'text/html' })).text());
    expect(html.anchors.map((a) => a.text)).toEqual(['stage_pkg-2.0-py3-none-any.whl']);
    const list = ProjectListSchema.parse(await (await get(`/stage/${TOKEN}/`, { accept: PIP_ACCEPT })).json());
    expect(list.projects).toEqual([{ name: 'Stage_Pkg' }]);
  });
  it('downloads and .metadata under the token; never cached', async () => {
    const res = await get(`/stage/${TOKEN}/stage-pkg/stage_pkg-2.0-py3-none-any.whl`, { range: 'bytes=0-1' });
    expect(res.status).toBe(206);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toBe('PK');
    expect((await get(`/stage/${TOKEN}/stage-pkg/stage_pkg-2.0-py3-none-any.whl.metadata`)).status).toBe(200);
    expect((await get(`/stage/${TOKEN}/Stage_Pkg/`)).headers.get('location')).toBe(`/stage/${TOKEN}/stage-pkg/`);
    expect((await get(`/stage/${TOKEN}`)).headers.get('location')).toBe(`/stage/${TOKEN}/`);
  });
  it('404, with one and the same detail, for unknown, published, canceled and expired stages and for wrong paths under a good token', async () => {
    const details = new Set<string>();
    for (const path of [
      `/stage/${TOKEN.replace('tok', 'xyz')}/stage-pkg/`,
      `/stage/${PUBLISHED_TOKEN}/stage-pkg/`,
      `/stage/${CANCELED_TOKEN}/stage-pkg/`,
      `/stage/${EXPIRED_TOKEN}/stage-pkg/`,
      `/stage/${PUBLISHED_TOKEN}/`,
      `/stage/${TOKEN}/demo-pkg/`,
      `/stage/${TOKEN}/stage-pkg/stage_pkg-2.0.tar.gz`, // pending: not staged
      `/stage/${TOKEN}/stage-pkg/stage_pkg-2.0-cp311-none-any.whl`, // error: not staged
      `/stage/${TOKEN}/stage-pkg/nope.whl.metadata`,
      '/stage/short/',
      '/stage/',
    ]) {
      const res = await get(path);
      const body = await expectProblem(res, 404);
      details.add(body.detail);
    }
    expect([...details]).toEqual([
      'Nothing is staged at this URL: the stage may have been published, canceled or expired, or the URL is wrong.',
    ]);
  });
});
