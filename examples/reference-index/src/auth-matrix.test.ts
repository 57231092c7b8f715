/**
 * The auth matrix (issue #10): every endpoint of the session API and every route of the
 * first-party mechanisms, composed as the reference index composes them (with its file bytes in
 * S3, s3rver on loopback, so that vnd-pep694-s3multipart-presigned is served too), against every kind of
 * caller: none, bad credentials (Bearer and Basic), a principal without permission, a principal
 * whose permission is revoked mid-session (the session's own creator), one granted mid-session,
 * and Basic `__token__` credentials that work as Bearer does. Where an authorized principal would
 * get 409, a principal without permission must get 403 first. Real HTTP on loopback, a real
 * SQLite file and a real tokens file that is rewritten to revoke and grant.
 *
 * The rows are checked against the server's route table (the express router) and the endpoint
 * table of packages/server/README.md, and the mechanism rows against the URLs in the mechanisms'
 * instructions and the methods their 405 answers allow: a new endpoint without a row fails here.
 *
 * Decisions this file pins down (see packages/server/README.md "Auth"):
 * - A principal without permission gets 403 for any session or file upload session that exists
 *   (published and canceled ones included, on their status URLs), and 404 for an ID that does
 *   not exist, like everyone else. The PEP requires the 403 ("MUST respond with 403 Forbidden"),
 *   and IDs are 128 bits from the CSPRNG, so 403-versus-404 tells nothing to anyone who does not
 *   already hold the URL. Action URLs of a canceled session answer 404 to everyone.
 * - The tokens file is re-read on the request after it changes, so no waiting is needed: the very
 *   next request must see a revocation or grant (asserted so, which is stricter than polling).
 * - Stage previews, `/simple/`, and the OPTIONS answers of multipart (CORS preflight) and tus
 *   (capabilities) need no credentials and ignore bad ones.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  attestation,
  DEFAULT_TEST_GRANTS,
  META,
  rawRequest,
  sha256,
  startTestServer,
  tally,
  TEST_TOKENS,
  type RawResponse,
  type TestServer,
} from '@pep694/server/testing';
import { S3BlobStore } from '@pep694/blobs-s3';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { defaultMechanisms } from './mechanisms.js';

const PROJECT = 'bob-auth';
const HPB = 'http-post-bytes';
const MULTIPART = 'vnd-pep694-multipart';
const TUS = 'vnd-pep694-tus';
const RESUMABLE_I6 = 'vnd-pep694-resumable-i6';
const RESUMABLE_I8 = 'vnd-pep694-resumable-i8';
const S3P = 'vnd-pep694-s3multipart-presigned';
/** The shape of a real ID (22 base64url characters) that no session or file has. */
const UNKNOWN_ID = 'AAAAAAAAAAAAAAAAAAAAAA';

const { alice, bob, carol } = TEST_TOKENS;
const bearer = (token: string) => `Bearer ${token}`;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** alice: everything; bob: `bob-*`; carol: nothing. */
const BASE = DEFAULT_TEST_GRANTS;
/** bob's token stays valid (so 403, not 401) but no longer covers the project. */
const BOB_REVOKED = BASE.map((g) => (g.principal === 'bob' ? { ...g, projects: ['nothing-here-*'] } : g));
const CAROL_GRANTED = BASE.map((g) => (g.principal === 'carol' ? { ...g, projects: [PROJECT] } : g));

interface Req {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

let t: TestServer;
let tusDir: string;
let s3: TestS3;
let blobs: S3BlobStore;
let version = 0;
const nextVersion = () => `1.0.${++version}`;

beforeAll(async () => {
  tusDir = mkdtempSync(join(tmpdir(), 'pep694-auth-tus-'));
  s3 = await startS3rver();
  blobs = await S3BlobStore.open(await s3.bucket());
  t = await startTestServer({
    blobs,
    // Composed as the reference index composes them (tus keeps its uploads under tusDir/tus).
    mechanisms: defaultMechanisms(tusDir, { s3: blobs }),
    // Many sessions per principal: every cell gets a fresh target.
    config: { index: {}, legacy: {}, limits: { maxLiveSessionsPerPrincipal: 100_000 } },
  });
  // The project exists (published by alice), so later sessions are not first releases: the
  // creator exemption of first-release sessions does not apply and revocation must bite.
  const s = await newSession(alice, '0.0.1');
  await completedFile(s, alice);
  expect((await api('POST', s.links.publish!, { token: alice, body: { meta: META } })).status).toBe(201);
});

afterAll(async () => {
  await t?.close();
  blobs?.close();
  await s3?.close();
  rmSync(tusDir, { recursive: true, force: true });
});

// ---- requests and fixtures ----------------------------------------------------------------------

async function send(req: Req, authorization?: string): Promise<RawResponse> {
  const headers: Record<string, string> = { ...req.headers };
  if (authorization !== undefined) headers['authorization'] = authorization;
  return rawRequest(req.method, req.url, {
    headers,
    ...(req.body
      ? { chunks: [req.body] }
      : { contentLength: req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS' ? undefined : 0 }),
  }).response;
}

const json = (value: unknown, type = 'application/vnd.pypi.upload.v2+json') => ({
  headers: { 'content-type': type },
  body: Buffer.from(JSON.stringify(value)),
});

type Session = { links: Record<string, string>; files: Record<string, { link: string }>; 'session-token': string; status: string };
type FileSession = { links: Record<string, string>; mechanism: Record<string, any>; status: string };

async function newSession(owner: string, v = nextVersion()): Promise<Session & { version: string }> {
  const res = await api('POST', t.url, { token: owner, body: { meta: META, name: PROJECT, version: v } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { ...res.body, version: v };
}

function fileOf(session: { version: string }, mechanism = HPB) {
  const filename = `bob_auth-${session.version}-py3-none-any.whl`;
  // Distinct bytes per file, no randomness: the name and mechanism are unique per session.
  const bytes = Buffer.from(`auth matrix ${filename} ${mechanism} `.repeat(8));
  return { filename, bytes, mechanism };
}

async function newFile(session: Session & { version: string }, owner: string, mechanism = HPB) {
  const f = fileOf(session, mechanism);
  const res = await api('POST', session.links.upload!, {
    token: owner,
    body: { meta: META, filename: f.filename, size: f.bytes.length, hashes: { sha256: sha256(f.bytes) }, mechanism },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return { ...f, file: res.body as FileSession };
}

function bytesRequest(f: { bytes: Buffer; file: FileSession }): Req {
  return { method: 'POST', url: f.file.mechanism.file_url, headers: { 'content-type': 'application/octet-stream' }, body: f.bytes };
}

function multipartRequest(f: { bytes: Buffer; filename: string; file: FileSession }): Req {
  const boundary = 'auth-matrix-boundary-7d1c';
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${f.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    f.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { method: 'POST', url: f.file.mechanism.file_url, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body };
}

const tusHeaders = { 'tus-resumable': '1.0.0' };
function patchRequest(f: { bytes: Buffer; file: FileSession }, offset = 0, part = f.bytes): Req {
  return {
    method: 'PATCH',
    url: f.file.mechanism.upload_url,
    headers: { ...tusHeaders, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: part,
  };
}

/** The draft's interop version field of a resumable mechanism's requests. */
const draftHeaders = (mechanism: string) => ({ 'upload-draft-interop-version': mechanism.endsWith('-i6') ? '6' : '8' });

/** Upload creation at `creation_url` with the whole file (Upload-Complete: ?1). */
function creationRequest(f: { bytes: Buffer; file: FileSession }, mechanism: string): Req {
  return {
    method: 'POST',
    url: f.file.mechanism.creation_url,
    headers: { ...draftHeaders(mechanism), 'upload-complete': '?1' },
    body: f.bytes,
  };
}

/** A file of `mechanism` with an upload resource created by `owner` (careful creation, no content); its URI. */
async function resumableUpload(owner: string, mechanism: string) {
  const f = await newFile(await newSession(owner), owner, mechanism);
  const res = await send(
    { method: 'POST', url: f.file.mechanism.creation_url, headers: { ...draftHeaders(mechanism), 'upload-complete': '?0' } },
    bearer(owner),
  );
  expect(res.status, res.body).toBe(201);
  return { ...f, upload: new URL(String(res.headers.location), f.file.mechanism.creation_url).href };
}

/** A request on the upload resource of a fresh file. */
function resourceRequest(f: { bytes: Buffer; upload: string }, method: string, mechanism: string): Req {
  if (method !== 'PATCH') return { method, url: f.upload, headers: draftHeaders(mechanism) };
  const headers = {
    ...draftHeaders(mechanism),
    'content-type': 'application/partial-upload',
    'upload-offset': '0',
    'upload-complete': '?1',
  };
  return { method, url: f.upload, headers, body: f.bytes };
}

/** The auth rows of a resumable mechanism: creation_url (POST, OPTIONS) and the upload resource (Location). */
function resumableRows(mechanism: string): Row[] {
  const fileId = (f: { file: FileSession }) => lastSegment(f.file.links['file-upload-session']!);
  /** An upload resource whose file is in `error` (completed before every byte): its routes then answer 409. */
  const errored = async (owner: string) => {
    const f = await resumableUpload(owner, mechanism);
    await expectStatus({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(owner), 422);
    return f;
  };
  const creationRows: Row[] = [
    {
      key: `${mechanism} POST creation_url`,
      pep: mechanism,
      ok: 201,
      build: async (owner) => creationRequest(await newFile(await newSession(owner), owner, mechanism), mechanism),
      conflict: async (owner) => creationRequest(await erroredFile(owner, mechanism), mechanism),
      unknown: async (owner) => {
        const f = await newFile(await newSession(owner), owner, mechanism);
        return { ...creationRequest(f, mechanism), url: withId(f.file.mechanism.creation_url, fileId(f)) };
      },
    },
    {
      key: `${mechanism} OPTIONS creation_url`,
      pep: mechanism,
      ok: 204,
      build: async (owner) => ({
        method: 'OPTIONS',
        url: (await newFile(await newSession(owner), owner, mechanism)).file.mechanism.creation_url,
      }),
      conflict: async (owner) => ({ method: 'OPTIONS', url: (await erroredFile(owner, mechanism)).file.mechanism.creation_url }),
      unknown: async (owner) => {
        const f = await newFile(await newSession(owner), owner, mechanism);
        return { method: 'OPTIONS', url: withId(f.file.mechanism.creation_url, fileId(f)) };
      },
    },
  ];
  const methods: [string, number][] = [
    ['HEAD', 204],
    ...(mechanism.endsWith('-i8') ? ([['GET', 204]] as [string, number][]) : []),
    ['PATCH', 201],
    ['DELETE', 204],
    ['OPTIONS', 204],
  ];
  return [
    ...creationRows,
    ...methods.map(([method, ok]): Row => ({
      key: `${mechanism} ${method} Location`,
      pep: mechanism,
      ok,
      build: async (owner) => resourceRequest(await resumableUpload(owner, mechanism), method, mechanism),
      conflict: async (owner) => resourceRequest(await errored(owner), method, mechanism),
      unknown: async (owner) => {
        const f = await resumableUpload(owner, mechanism);
        return { ...resourceRequest(f, method, mechanism), url: withId(f.upload, fileId(f)) };
      },
    })),
  ];
}

async function expectStatus(req: Req, authorization: string, status: number) {
  const res = await send(req, authorization);
  expect(res.status, `${req.method} ${req.url}: ${res.body}`).toBe(status);
  return res;
}

/** A file whose bytes arrived through http-post-bytes (not yet completed). */
async function transferredFile(session: Session & { version: string }, owner: string) {
  const f = await newFile(session, owner);
  await expectStatus(bytesRequest(f), bearer(owner), 204);
  return f;
}

async function completedFile(session: Session & { version: string }, owner: string) {
  const f = await transferredFile(session, owner);
  await expectStatus({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(owner), 201);
  return f;
}

/** A published session with one file; `file` is that file's upload session. */
async function publishedSession(owner: string) {
  const s = await newSession(owner);
  const f = await completedFile(s, owner);
  await expectStatus({ method: 'POST', url: s.links.publish!, ...json({ meta: META }) }, bearer(owner), 201);
  return { s: await sessionNow(s, owner), f };
}

async function sessionNow<S extends { links: Record<string, string> }>(s: S, owner: string): Promise<S & Session> {
  const res = await api('GET', s.links.session!, { token: owner });
  expect(res.status).toBe(200);
  return { ...s, ...res.body };
}

/** A file of `mechanism` in `error` (completion before any bytes): its routes then answer 409. */
async function erroredFile(owner: string, mechanism: string) {
  const s = await newSession(owner);
  const f = await newFile(s, owner, mechanism);
  await expectStatus({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(owner), 422);
  return f;
}

const withId = (url: string, id: string, replacement = UNKNOWN_ID) => {
  expect(url).toContain(id);
  return url.replace(id, replacement);
};
const lastSegment = (url: string) => new URL(url).pathname.split('/').filter(Boolean).at(-1)!;

// ---- the rows -------------------------------------------------------------------------------------

interface Row {
  /** `METHOD /route` of the session API router, or `<mechanism> METHOD <instructions key>`. */
  readonly key: string;
  /** The PEP 694 section the endpoint implements. */
  readonly pep: string;
  /** What an authorized principal gets. */
  readonly ok: number;
  /** A fresh target, made by `owner`; the request an authorized principal would make. */
  build(owner: string): Promise<Req>;
  /** A target where an authorized principal gets 409: a principal without permission must get 403. */
  conflict?(owner: string): Promise<Req>;
  /** The same route with an ID that does not exist. */
  unknown?(owner: string): Promise<Req>;
}

const createBody = () => json({ meta: META, name: PROJECT, version: nextVersion() });
const extendBody = () => json({ meta: META, 'extend-for': 3600 });
const fileBody = (f: ReturnType<typeof fileOf>) =>
  json({ meta: META, filename: f.filename, size: f.bytes.length, hashes: { sha256: sha256(f.bytes) }, mechanism: f.mechanism });

const ROWS: Row[] = [
  {
    key: 'POST /',
    pep: 'Create a Publishing Session',
    ok: 201,
    build: async () => ({ method: 'POST', url: t.url, ...createBody() }),
    // PEP "Multiple Session Creation Requests": 403 takes precedence over 409.
    conflict: async (owner) => {
      const s = await newSession(owner);
      return { method: 'POST', url: t.url, ...json({ meta: META, name: PROJECT, version: s.version }) };
    },
  },
  {
    key: 'GET /sessions/:session',
    pep: 'Publishing Session Status',
    ok: 200,
    build: async (owner) => ({ method: 'GET', url: (await newSession(owner)).links.session! }),
    unknown: async (owner) => {
      const s = await newSession(owner);
      return { method: 'GET', url: withId(s.links.session!, lastSegment(s.links.session!)) };
    },
  },
  {
    key: 'DELETE /sessions/:session',
    pep: 'Publishing Session Cancellation',
    ok: 204,
    build: async (owner) => ({ method: 'DELETE', url: (await newSession(owner)).links.session! }),
    conflict: async (owner) => ({ method: 'DELETE', url: (await publishedSession(owner)).s.links.session! }),
    unknown: async (owner) => {
      const s = await newSession(owner);
      return { method: 'DELETE', url: withId(s.links.session!, lastSegment(s.links.session!)) };
    },
  },
  {
    key: 'POST /sessions/:session/files',
    pep: 'Create a File Upload Session',
    ok: 202,
    build: async (owner) => {
      const s = await newSession(owner);
      return { method: 'POST', url: s.links.upload!, ...fileBody(fileOf(s)) };
    },
    conflict: async (owner) => {
      const { s } = await publishedSession(owner);
      return { method: 'POST', url: s.links.upload!, ...fileBody(fileOf(s)) };
    },
    unknown: async (owner) => {
      const s = await newSession(owner);
      return { method: 'POST', url: withId(s.links.upload!, lastSegment(s.links.session!)), ...fileBody(fileOf(s)) };
    },
  },
  {
    key: 'POST /sessions/:session/publish',
    pep: 'Complete a Publishing Session',
    ok: 201,
    build: async (owner) => {
      const s = await newSession(owner);
      await completedFile(s, owner);
      return { method: 'POST', url: s.links.publish!, ...json({ meta: META }) };
    },
    conflict: async (owner) => ({ method: 'POST', url: (await publishedSession(owner)).s.links.publish!, ...json({ meta: META }) }),
    unknown: async (owner) => {
      const s = await newSession(owner);
      return { method: 'POST', url: withId(s.links.publish!, lastSegment(s.links.session!)), ...json({ meta: META }) };
    },
  },
  {
    key: 'POST /sessions/:session/extend',
    pep: 'Publishing Session Extension',
    ok: 200,
    build: async (owner) => ({ method: 'POST', url: (await newSession(owner)).links.extend!, ...extendBody() }),
    conflict: async (owner) => ({ method: 'POST', url: (await publishedSession(owner)).s.links.extend!, ...extendBody() }),
    unknown: async (owner) => {
      const s = await newSession(owner);
      return { method: 'POST', url: withId(s.links.extend!, lastSegment(s.links.session!)), ...extendBody() };
    },
  },
  {
    key: 'GET /files/:file',
    pep: 'File Upload Session Status',
    ok: 200,
    build: async (owner) => ({ method: 'GET', url: (await newFile(await newSession(owner), owner)).file.links['file-upload-session']! }),
    unknown: async (owner) => {
      const url = (await newFile(await newSession(owner), owner)).file.links['file-upload-session']!;
      return { method: 'GET', url: withId(url, lastSegment(url)) };
    },
  },
  {
    key: 'DELETE /files/:file',
    pep: 'File Upload Session Cancellation and Deletion',
    ok: 204,
    build: async (owner) => ({ method: 'DELETE', url: (await newFile(await newSession(owner), owner)).file.links['file-upload-session']! }),
    conflict: async (owner) => ({ method: 'DELETE', url: (await publishedSession(owner)).f.file.links['file-upload-session']! }),
    unknown: async (owner) => {
      const url = (await newFile(await newSession(owner), owner)).file.links['file-upload-session']!;
      return { method: 'DELETE', url: withId(url, lastSegment(url)) };
    },
  },
  {
    key: 'GET /stage/:token/files/:file',
    pep: 'Publishing Session Files',
    ok: 200,
    build: async (owner) => {
      const s = await newSession(owner);
      const f = await newFile(s, owner);
      return { method: 'GET', url: (await sessionNow(s, owner)).files[f.filename]!.link };
    },
    unknown: async (owner) => {
      const s = await newSession(owner);
      const f = await newFile(s, owner);
      const link = (await sessionNow(s, owner)).files[f.filename]!.link;
      return { method: 'GET', url: withId(link, lastSegment(link)) };
    },
  },
  {
    key: 'DELETE /stage/:token/files/:file',
    pep: 'Publishing Session Files',
    ok: 204,
    build: async (owner) => {
      const s = await newSession(owner);
      const f = await newFile(s, owner);
      return { method: 'DELETE', url: (await sessionNow(s, owner)).files[f.filename]!.link };
    },
    conflict: async (owner) => {
      const { s, f } = await publishedSession(owner);
      return { method: 'DELETE', url: s.files[f.filename]!.link };
    },
    unknown: async (owner) => {
      const s = await newSession(owner);
      const f = await newFile(s, owner);
      const link = (await sessionNow(s, owner)).files[f.filename]!.link;
      return { method: 'DELETE', url: withId(link, lastSegment(link)) };
    },
  },
  {
    key: 'POST /files/:file/complete',
    pep: 'Complete a File Upload Session',
    ok: 201,
    build: async (owner) => ({
      method: 'POST',
      url: (await transferredFile(await newSession(owner), owner)).file.links.complete!,
      ...json({ meta: META }),
    }),
    conflict: async (owner) => ({
      method: 'POST',
      url: (await completedFile(await newSession(owner), owner)).file.links.complete!,
      ...json({ meta: META }),
    }),
    unknown: async (owner) => {
      const f = await transferredFile(await newSession(owner), owner);
      return {
        method: 'POST',
        url: withId(f.file.links.complete!, lastSegment(f.file.links['file-upload-session']!)),
        ...json({ meta: META }),
      };
    },
  },
  {
    key: 'POST /files/:file/extend',
    pep: 'File Upload Session Extension',
    ok: 200,
    build: async (owner) => ({ method: 'POST', url: (await newFile(await newSession(owner), owner)).file.links.extend!, ...extendBody() }),
    conflict: async (owner) => ({ method: 'POST', url: (await publishedSession(owner)).f.file.links.extend!, ...extendBody() }),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner);
      return { method: 'POST', url: withId(f.file.links.extend!, lastSegment(f.file.links['file-upload-session']!)), ...extendBody() };
    },
  },
  // ---- mechanism routes ----
  {
    key: `${HPB} POST file_url`,
    pep: 'http-post-bytes',
    ok: 204,
    build: async (owner) => bytesRequest(await newFile(await newSession(owner), owner)),
    conflict: async (owner) => bytesRequest(await completedFile(await newSession(owner), owner)),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner);
      return { ...bytesRequest(f), url: withId(f.file.mechanism.file_url, lastSegment(f.file.links['file-upload-session']!)) };
    },
  },
  {
    key: `${HPB} POST attestations_url`,
    pep: 'http-post-bytes',
    ok: 204,
    build: async (owner) => {
      const f = await newFile(await newSession(owner), owner);
      return {
        method: 'POST',
        url: f.file.mechanism.attestations_url,
        ...json([attestation(f.filename, sha256(f.bytes))], 'application/json'),
      };
    },
    conflict: async (owner) => {
      const f = await completedFile(await newSession(owner), owner);
      return {
        method: 'POST',
        url: f.file.mechanism.attestations_url,
        ...json([attestation(f.filename, sha256(f.bytes))], 'application/json'),
      };
    },
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner);
      const url = withId(f.file.mechanism.attestations_url, lastSegment(f.file.links['file-upload-session']!));
      return { method: 'POST', url, ...json([attestation(f.filename, sha256(f.bytes))], 'application/json') };
    },
  },
  {
    key: `${MULTIPART} POST file_url`,
    pep: 'vnd-pep694-multipart',
    ok: 204,
    build: async (owner) => multipartRequest(await newFile(await newSession(owner), owner, MULTIPART)),
    conflict: async (owner) => multipartRequest(await erroredFile(owner, MULTIPART)),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, MULTIPART);
      return { ...multipartRequest(f), url: withId(f.file.mechanism.file_url, lastSegment(f.file.links['file-upload-session']!)) };
    },
  },
  {
    key: `${TUS} HEAD upload_url`,
    pep: 'vnd-pep694-tus',
    ok: 200,
    build: async (owner) => ({
      method: 'HEAD',
      url: (await newFile(await newSession(owner), owner, TUS)).file.mechanism.upload_url,
      headers: tusHeaders,
    }),
    conflict: async (owner) => ({ method: 'HEAD', url: (await erroredFile(owner, TUS)).file.mechanism.upload_url, headers: tusHeaders }),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, TUS);
      return {
        method: 'HEAD',
        url: withId(f.file.mechanism.upload_url, lastSegment(f.file.links['file-upload-session']!)),
        headers: tusHeaders,
      };
    },
  },
  {
    key: `${TUS} PATCH upload_url`,
    pep: 'vnd-pep694-tus',
    ok: 204,
    build: async (owner) => patchRequest(await newFile(await newSession(owner), owner, TUS)),
    conflict: async (owner) => patchRequest(await erroredFile(owner, TUS)),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, TUS);
      return { ...patchRequest(f), url: withId(f.file.mechanism.upload_url, lastSegment(f.file.links['file-upload-session']!)) };
    },
  },
  {
    key: `${TUS} DELETE upload_url`,
    pep: 'vnd-pep694-tus',
    ok: 204,
    build: async (owner) => ({
      method: 'DELETE',
      url: (await newFile(await newSession(owner), owner, TUS)).file.mechanism.upload_url,
      headers: tusHeaders,
    }),
    conflict: async (owner) => ({ method: 'DELETE', url: (await erroredFile(owner, TUS)).file.mechanism.upload_url, headers: tusHeaders }),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, TUS);
      return {
        method: 'DELETE',
        url: withId(f.file.mechanism.upload_url, lastSegment(f.file.links['file-upload-session']!)),
        headers: tusHeaders,
      };
    },
  },
  ...resumableRows(RESUMABLE_I6),
  ...resumableRows(RESUMABLE_I8),
  {
    // The part URLs themselves go to the bucket, authorized by their signatures (plugins/s3-presigned e2e tests).
    key: `${S3P} GET parts_url`,
    pep: 'vnd-pep694-s3multipart-presigned',
    ok: 200,
    build: async (owner) => ({ method: 'GET', url: (await newFile(await newSession(owner), owner, S3P)).file.mechanism.parts_url }),
    conflict: async (owner) => ({ method: 'GET', url: (await erroredFile(owner, S3P)).file.mechanism.parts_url }),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, S3P);
      return { method: 'GET', url: withId(f.file.mechanism.parts_url, lastSegment(f.file.links['file-upload-session']!)) };
    },
  },
  {
    key: `${S3P} HEAD parts_url`,
    pep: 'vnd-pep694-s3multipart-presigned',
    ok: 200,
    build: async (owner) => ({ method: 'HEAD', url: (await newFile(await newSession(owner), owner, S3P)).file.mechanism.parts_url }),
    conflict: async (owner) => ({ method: 'HEAD', url: (await erroredFile(owner, S3P)).file.mechanism.parts_url }),
    unknown: async (owner) => {
      const f = await newFile(await newSession(owner), owner, S3P);
      return { method: 'HEAD', url: withId(f.file.mechanism.parts_url, lastSegment(f.file.links['file-upload-session']!)) };
    },
  },
];

/** Routes that need no credentials by design, with why; checked in their own tests below. */
const EXEMPT: Record<string, string> = {
  [`${MULTIPART} OPTIONS file_url`]: 'CORS preflight: browsers send it without credentials; the answer is the same for every ID',
  [`${TUS} OPTIONS upload_url`]: 'tus capabilities (Tus-Version, Tus-Extension): nothing about any upload',
};

// ---- checks of one answer -------------------------------------------------------------------

function problem(res: RawResponse, status: number, code?: string) {
  expect(res.status, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const doc = res.json();
  expect(doc.status).toBe(status);
  if (code) expect(doc.code).toBe(code);
  return doc;
}

/** 401 with problem+json and the challenges of both schemes (PEP "Authentication and Authorization"). */
function unauthenticated(res: RawResponse) {
  problem(res, 401, 'unauthenticated');
  const challenge = String(res.headers['www-authenticate'] ?? '');
  expect(challenge).toMatch(/Basic realm=/);
  expect(challenge).toMatch(/Bearer realm=/);
}

function forbidden(res: RawResponse) {
  problem(res, 403, 'forbidden');
  expect(res.headers['www-authenticate']).toBeUndefined();
}

/** HEAD answers carry no body: status and headers only. */
function forbiddenOrHead(req: Req, res: RawResponse) {
  if (req.method === 'HEAD') expect(res.status).toBe(403);
  else forbidden(res);
}
function unauthenticatedOrHead(req: Req, res: RawResponse) {
  if (req.method !== 'HEAD') return unauthenticated(res);
  expect(res.status).toBe(401);
  expect(String(res.headers['www-authenticate'] ?? '')).toMatch(/Bearer realm=/);
}

// ---- the matrix ---------------------------------------------------------------------------------

describe('PEP 694 Authentication and Authorization: the auth matrix', () => {
  it('has a row for every route of the session API (the express router) and every endpoint of the README', () => {
    const norm = (p: string) => p.replace(/:[A-Za-z]+/g, '*').replace(/\{[A-Za-z-]+\}/g, '*');
    // The router: the one whose routes include the session status route.
    const stack = (t.server.app as unknown as { router: { stack: any[] } }).router.stack;
    const apiRouter = stack.find((l) => l.handle?.stack?.some((x: any) => x.route?.path === '/sessions/:session'));
    expect(apiRouter, 'session API router in the app').toBeDefined();
    const routed = new Set<string>();
    for (const layer of apiRouter.handle.stack) {
      if (!layer.route) continue;
      for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all'))
        routed.add(`${method.toUpperCase()} ${norm(layer.route.path)}`);
    }
    const rows = new Set(
      ROWS.filter((r) => r.key.startsWith('GET ') || r.key.startsWith('POST ') || r.key.startsWith('DELETE ')).map((r) => {
        const [m, p] = r.key.split(' ');
        return `${m} ${norm(p!)}`;
      }),
    );
    expect([...routed].sort()).toEqual([...rows].sort());

    // The README's endpoint table: every `{root}` row, with its methods.
    const readme = readFileSync(new URL('../../../packages/server/README.md', import.meta.url), 'utf8');
    const table = readme.split('## Endpoints')[1]!.split('\n## ')[0]!;
    const documented = new Set<string>();
    const others: string[] = [];
    for (const line of table.split('\n').filter((l) => l.startsWith('| `'))) {
      const cell = line.split('|')[1]!;
      // The method spans (`GET`, `DELETE {root}…`), not the link names in parentheses.
      const spans = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((s) => /^([A-Z]+|\*)( |$)/.test(s));
      const last = spans.at(-1)!;
      const [lastMethod, path] = last.split(' ');
      const methods = [...spans.slice(0, -1), lastMethod!];
      if (!path!.startsWith('{root}') || path!.startsWith('{root}mechanisms/')) {
        others.push(last);
        continue;
      }
      for (const m of methods) documented.add(`${m} ${norm(`/${path!.slice('{root}'.length)}`)}`);
    }
    expect([...documented].sort()).toEqual([...rows].sort());
    // The rest: mechanism routes (rows below), the credential-free index and provenance, the legacy
    // API (its block below) and the operator's endpoints (their own tests: packages/server/src/ops/).
    expect(others.sort()).toEqual([
      '* {root}mechanisms/{identifier}/…',
      'GET /healthz',
      'GET /metrics',
      'GET /readyz',
      'GET {integrityPath}{project}/{version}/{filename}/provenance',
      'GET {simplePath}…',
      'GET {stagePath}{token}/…',
      'POST {legacyPath}',
    ]);
    tally('auth cases', routed.size);
  });

  it('has a row (or a documented exemption) for every URL and method of every mechanism', async () => {
    expect(t.server.mechanisms.map((m) => m.identifier)).toEqual([HPB, MULTIPART, TUS, RESUMABLE_I6, RESUMABLE_I8, S3P]);
    const wanted = new Set<string>();
    for (const m of t.server.mechanisms) {
      const f = await newFile(await newSession(alice), alice, m.identifier);
      const urls: [string, unknown][] = Object.entries(f.file.mechanism);
      // The draft's upload resource is not in the instructions: its URI is the creation's Location.
      if (typeof f.file.mechanism.creation_url === 'string') urls.push(['Location', (await resumableUpload(alice, m.identifier)).upload]);
      for (const [key, value] of urls) {
        if (typeof value !== 'string' || !/^https?:\/\//.test(value)) continue;
        // The methods a route takes: the `Allow` of its 405 (asked without credentials).
        const res = await send({ method: 'PUT', url: value, headers: { 'content-type': 'application/octet-stream' } });
        expect(res.status, `${m.identifier} ${key}`).toBe(405);
        problem(res, 405, 'method-not-allowed');
        for (const method of String(res.headers['allow'])
          .split(',')
          .map((s) => s.trim()))
          wanted.add(`${m.identifier} ${method} ${key}`);
      }
    }
    const covered = new Set([...ROWS.map((r) => r.key), ...Object.keys(EXEMPT)]);
    expect([...wanted].sort()).toEqual([...covered].filter((k) => !/^(GET|POST|DELETE) \//.test(k)).sort());
    tally('auth cases', wanted.size);
  });

  for (const row of ROWS) {
    it(`${row.key} (PEP 694 ${row.pep}): 401 without or with bad credentials, 403 without permission or after revocation, granted mid-session works, Basic = Bearer, 403 before 409`, async () => {
      let cells = 0;
      t.setGrants(BASE);
      try {
        // The request succeeds for its owner: the target is real (so the refusals below are about auth).
        expect((await send(await row.build(bob), bearer(bob))).status).toBe(row.ok);
        cells++;

        // No credentials, bad Bearer, bad Basic, a valid token sent as the wrong Basic user: 401.
        for (const authorization of [
          undefined,
          bearer('not-a-token-0123456789abcdef'),
          basic('__token__', 'not-a-token-0123456789abcdef'),
          basic('bob', bob),
        ]) {
          const req = await row.build(bob);
          unauthenticatedOrHead(req, await send(req, authorization));
          cells++;
        }

        // A principal without permission (valid token): 403, as Bearer and as Basic.
        for (const authorization of [bearer(carol), basic('__token__', carol)]) {
          const req = await row.build(bob);
          forbiddenOrHead(req, await send(req, authorization));
          cells++;
        }

        // express answers HEAD on GET routes with the GET handler: the same auth applies.
        if (row.key.startsWith('GET ')) {
          const req = { ...(await row.build(bob)), method: 'HEAD' };
          expect((await send(req, undefined)).status).toBe(401);
          expect((await send(req, bearer(carol))).status).toBe(403);
          expect((await send(req, bearer(bob))).status).toBe(200);
          cells += 3;
        }

        // Basic `__token__` works like Bearer.
        expect((await send(await row.build(bob), basic('__token__', bob))).status).toBe(row.ok);
        cells++;

        // Revoked mid-session (bob made the target): the next request is 403; restored, it works again.
        {
          const req = await row.build(bob);
          t.setGrants(BOB_REVOKED);
          forbiddenOrHead(req, await send(req, bearer(bob)));
          t.setGrants(BASE);
          expect((await send(req, bearer(bob))).status, 'restored permission works again (not sticky)').toBe(row.ok);
          cells += 2;
        }

        // Granted mid-session: carol is refused, then granted, and her next request succeeds.
        {
          const req = await row.build(bob);
          const probe = await row.build(bob);
          forbiddenOrHead(probe, await send(probe, bearer(carol)));
          t.setGrants(CAROL_GRANTED);
          expect((await send(req, bearer(carol))).status, 'granted mid-session').toBe(row.ok);
          t.setGrants(BASE);
          cells += 2;
        }

        // 403 before 409: where an authorized principal gets 409, one without permission gets 403.
        if (row.conflict) {
          const req = await row.conflict(bob);
          forbiddenOrHead(req, await send(req, bearer(carol)));
          const revoked = await row.conflict(bob);
          t.setGrants(BOB_REVOKED);
          forbiddenOrHead(revoked, await send(revoked, bearer(bob)));
          t.setGrants(BASE);
          const res = await send(req, bearer(alice));
          expect(res.status, `an authorized principal gets 409 here: ${res.body}`).toBe(409);
          if (req.method !== 'HEAD') problem(res, 409);
          cells += 3;
        }

        // An ID that does not exist: 404 whoever asks (nothing to be forbidden from); still 401 first.
        if (row.unknown) {
          const req = await row.unknown(bob);
          for (const who of [alice, carol]) {
            const res = await send(req, bearer(who));
            if (req.method === 'HEAD') expect(res.status).toBe(404);
            else problem(res, 404, 'not-found');
          }
          unauthenticatedOrHead(req, await send(req, undefined));
          cells += 3;
        }
      } finally {
        t.setGrants(BASE);
      }
      tally('auth cases', cells);
    }, 60_000);
  }
});

/**
 * The legacy upload API (issue #16) with the same tokens and grants as Upload 2.0. Its one
 * deliberate difference: credentials that are sent but not valid get 403 with Warehouse's
 * "Invalid or non-existent authentication information." (what twine users know from PyPI), not
 * 401; missing credentials get 401 with both challenges, as everywhere.
 */
describe('PEP 694 Legacy API: the auth matrix of /legacy/', () => {
  const legacyUrl = () => new URL('/legacy/', t.origin).href;
  const accept = { accept: 'application/problem+json' };
  /** twine's form for a new sdist of `project` (default: the matrix's project, published by alice). */
  function legacyRequest(project = PROJECT, version = nextVersion()): Req & { filename: string; version: string } {
    const filename = `${project.replace(/-/g, '_')}-${version}.tar.gz`;
    const bytes = Buffer.from(`legacy auth matrix ${filename}`);
    const boundary = 'legacy-auth-boundary-51e0';
    const fields: [string, string][] = [
      [':action', 'file_upload'],
      ['protocol_version', '1'],
      ['name', project],
      ['version', version],
      ['filetype', 'sdist'],
      ['sha256_digest', sha256(bytes)],
    ];
    const body = Buffer.concat([
      ...fields.map(([k, v]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${filename}"\r\n\r\n`),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    return {
      method: 'POST',
      url: legacyUrl(),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...accept },
      body,
      filename,
      version,
    };
  }
  const published = async () =>
    (
      (await (await fetch(`${t.origin}/simple/${PROJECT}/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as {
        files: { filename: string }[];
      }
    ).files.map((f) => f.filename);

  it('401 without credentials, 403 for bad ones and without permission, Basic = Bearer, revocation and grants on the next request, 403 before 409; refusals store nothing', async () => {
    t.setGrants(BASE);
    let cells = 0;
    const before = await published();
    const stored: string[] = [];
    let firstVersion: string | undefined;
    try {
      const ok = async (authorization: string, what: string) => {
        const req = legacyRequest();
        const res = await send(req, authorization);
        expect(res.status, `${what}: ${res.body}`).toBe(200);
        stored.push(req.filename);
        firstVersion ??= req.version;
        cells++;
      };
      await ok(basic('__token__', bob), 'bob, Basic __token__ (as twine sends it)');
      await ok(bearer(bob), 'bob, Bearer');

      unauthenticated(await send(legacyRequest(), undefined));
      cells++;
      for (const authorization of [
        bearer('not-a-token-0123456789abcdef'),
        basic('__token__', 'not-a-token-0123456789abcdef'),
        basic('bob', bob),
      ]) {
        const doc = problem(await send(legacyRequest(), authorization), 403, 'forbidden');
        expect(doc.detail).toBe('Invalid or non-existent authentication information.');
        cells++;
      }
      for (const authorization of [bearer(carol), basic('__token__', carol)]) {
        const doc = problem(await send(legacyRequest(), authorization), 403, 'forbidden');
        expect(doc.detail).toBe(`The user 'carol' isn't allowed to upload to project '${PROJECT}'.`);
        cells++;
      }
      // A new name: carol may not register one; bob may register bob-*; nobody but alice gets alice-*.
      problem(await send(legacyRequest('carol-new-name'), bearer(carol)), 403, 'forbidden');
      expect((await send(legacyRequest('bob-legacy-new'), bearer(bob))).status).toBe(200);
      problem(await send(legacyRequest('alice-only-name'), bearer(bob)), 403, 'forbidden');
      cells += 3;

      // Revoked: the very next request is refused; restored, it works again.
      t.setGrants(BOB_REVOKED);
      forbidden(await send(legacyRequest(), bearer(bob)));
      t.setGrants(BASE);
      await ok(bearer(bob), 'bob, restored');
      // Granted: carol, refused until now, uploads.
      t.setGrants(CAROL_GRANTED);
      await ok(bearer(carol), 'carol, granted');
      t.setGrants(BASE);
      cells++;

      // 403 before 409: a file name that is published answers 409 to alice, 403 to carol.
      const conflictReq = legacyRequest(PROJECT, firstVersion);
      expect(stored).toContain(conflictReq.filename);
      forbidden(await send(conflictReq, bearer(carol)));
      problem(await send(conflictReq, bearer(alice)), 409, 'file-already-published');
      cells += 2;

      // Other methods: 405 naming POST, whoever asks.
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await send({ method, url: legacyUrl(), headers: accept }, bearer(alice));
        problem(res, 405, 'method-not-allowed');
        expect(res.headers['allow']).toBe('POST');
        cells++;
      }
    } finally {
      t.setGrants(BASE);
    }
    // Exactly the accepted uploads were published.
    expect((await published()).sort()).toEqual([...before, ...stored].sort());
    tally('auth cases', cells);
  }, 60_000);
});

describe('PEP 694 Authentication and Authorization: permission is evaluated on every request', () => {
  it('a tus upload: PATCH half, revoked: PATCH and HEAD 403, restored: HEAD says half, PATCH the rest, complete, publish', async () => {
    t.setGrants(BASE);
    try {
      const s = await newSession(bob);
      const f = await newFile(s, bob, TUS);
      const half = Math.floor(f.bytes.length / 2);
      await expectStatus(patchRequest(f, 0, f.bytes.subarray(0, half)), bearer(bob), 204);
      t.setGrants(BOB_REVOKED);
      forbidden(await send(patchRequest(f, half, f.bytes.subarray(half)), bearer(bob)));
      expect((await send({ method: 'HEAD', url: f.file.mechanism.upload_url, headers: tusHeaders }, bearer(bob))).status).toBe(403);
      forbidden(await send({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(bob)));
      t.setGrants(BASE);
      const head = await expectStatus({ method: 'HEAD', url: f.file.mechanism.upload_url, headers: tusHeaders }, bearer(bob), 200);
      expect(head.headers['upload-offset']).toBe(String(half));
      await expectStatus(patchRequest(f, half, f.bytes.subarray(half)), bearer(bob), 204);
      // Granted mid-session: carol, refused until now, completes and publishes bob's session.
      forbidden(await send({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(carol)));
      t.setGrants(CAROL_GRANTED);
      await expectStatus({ method: 'POST', url: f.file.links.complete!, ...json({ meta: META }) }, bearer(carol), 201);
      await expectStatus({ method: 'POST', url: s.links.publish!, ...json({ meta: META }) }, bearer(carol), 201);
      t.setGrants(BASE);
      tally('auth cases', 9);
    } finally {
      t.setGrants(BASE);
    }
  });

  it('revoking by removing the token gives 401 on the next request; a broken tokens file revokes every token until fixed', async () => {
    t.setGrants(BASE);
    try {
      const s = await newSession(bob);
      t.setGrants(BASE.filter((g) => g.principal !== 'bob'));
      unauthenticated(await send({ method: 'GET', url: s.links.session! }, bearer(bob)));
      t.setGrants(BASE);
      expect((await send({ method: 'GET', url: s.links.session! }, bearer(bob))).status).toBe(200);
      // A broken edit fails closed (README "Auth"): alice too is refused, until the file is fixed.
      writeFileSync(join(t.dataDir, 'tokens.json'), '{"tokens": [');
      unauthenticated(await send({ method: 'GET', url: s.links.session! }, bearer(alice)));
      t.setGrants(BASE);
      expect((await send({ method: 'GET', url: s.links.session! }, bearer(alice))).status).toBe(200);
      tally('auth cases', 4);
    } finally {
      t.setGrants(BASE);
    }
  });

  it('an in-place rewrite of the tokens file (same inode, same size, even the same mtime) is seen by the next request', async () => {
    // Editors and `cat > tokens.json` rewrite in place. Two grants of equal length that differ:
    // the file keeps its inode and size, and the rewrites come faster than the file system's
    // timestamp granularity, so mtime, size and inode alone cannot tell the versions apart.
    const path = join(t.dataDir, 'tokens.json');
    const grant = (pattern: string) =>
      JSON.stringify({ tokens: BASE.map((g) => (g.principal === 'carol' ? { ...g, projects: [pattern] } : g)) });
    const yes = grant(PROJECT);
    const no = grant('zzz-zzzz');
    expect(yes.length).toBe(no.length);
    const s = await newSession(bob);
    const req = { method: 'GET', url: s.links.session! };
    try {
      writeFileSync(path, no);
      const ino = statSync(path).ino;
      // A day ago, in whole seconds (utimes cannot set sub-µs mtimes exactly).
      const PINNED = Math.floor(Date.now() / 1000) - 86_400;
      let cells = 0;
      for (let i = 0; i < 20; i++) {
        const allowed = i % 2 === 0;
        const before = statSync(path);
        writeFileSync(path, allowed ? yes : no);
        // The second half also pins the mtime, as a coarse file-system clock (or `cp -p`,
        // `rsync -t`) leaves it: only the content (and ctime) changes, and that must be seen.
        if (i >= 10) utimesSync(path, PINNED, PINNED);
        const after = statSync(path);
        expect(after.ino).toBe(ino);
        expect(after.size).toBe(before.size);
        if (i > 10) expect(after.mtimeMs).toBe(before.mtimeMs);
        expect((await send(req, bearer(carol))).status, `rewrite ${i}: carol ${allowed ? 'granted' : 'revoked'}`).toBe(allowed ? 200 : 403);
        cells++;
      }
      tally('auth cases', cells);
    } finally {
      t.setGrants(BASE);
    }
  });

  it('first release: the creator stays authorized for the session when its name-registration grant is withdrawn (PEP 694 "Create a Publishing Session" SHOULD); others are refused', async () => {
    t.setGrants(BASE);
    try {
      const res = await api('POST', t.url, { token: bob, body: { meta: META, name: 'bob-first-release', version: '1.0' } });
      expect(res.status).toBe(201);
      t.setGrants(BOB_REVOKED);
      expect((await send({ method: 'GET', url: res.body.links.session }, bearer(bob))).status).toBe(200);
      forbidden(await send({ method: 'GET', url: res.body.links.session }, bearer(carol)));
      // Removing the token itself still ends it (401).
      t.setGrants(BASE.filter((g) => g.principal !== 'bob'));
      unauthenticated(await send({ method: 'GET', url: res.body.links.session }, bearer(bob)));
      t.setGrants(BASE);
      expect((await send({ method: 'DELETE', url: res.body.links.session }, bearer(bob))).status).toBe(204);
      tally('auth cases', 3);
    } finally {
      t.setGrants(BASE);
    }
  });

  it('PEP 694 Create a Publishing Session: 403 before 409 name-unavailable (a first release holds the name)', async () => {
    const held = await api('POST', t.url, { token: bob, body: { meta: META, name: 'bob-held-name', version: '1.0' } });
    expect(held.status).toBe(201);
    const other = { method: 'POST', url: t.url, ...json({ meta: META, name: 'bob-held-name', version: '2.0' }) };
    forbidden(await send(other, bearer(carol)));
    problem(await send(other, bearer(alice)), 409, 'name-unavailable');
    const same = { method: 'POST', url: t.url, ...json({ meta: META, name: 'bob-held-name', version: '1.0' }) };
    forbidden(await send(same, bearer(carol)));
    problem(await send(same, bearer(alice)), 409, 'session-exists');
    expect((await send({ method: 'DELETE', url: held.body.links.session }, bearer(bob))).status).toBe(204);
    tally('auth cases', 4);
  });

  it('a canceled session: its status URL keeps the 403/200 split, its action URLs are 404 for everyone', async () => {
    const s = await newSession(bob);
    await expectStatus({ method: 'DELETE', url: s.links.session! }, bearer(bob), 204);
    expect((await send({ method: 'GET', url: s.links.session! }, bearer(bob))).status).toBe(200);
    forbidden(await send({ method: 'GET', url: s.links.session! }, bearer(carol)));
    for (const who of [bob, carol]) {
      problem(await send({ method: 'POST', url: s.links.extend!, ...extendBody() }, bearer(who)), 404, 'not-found');
      problem(await send({ method: 'POST', url: s.links.publish!, ...json({ meta: META }) }, bearer(who)), 404, 'not-found');
    }
    unauthenticated(await send({ method: 'POST', url: s.links.publish!, ...json({ meta: META }) }, undefined));
    tally('auth cases', 7);
  });
});

describe('malformed Authorization headers: 401 (never 500)', () => {
  const MALFORMED: [string, string][] = [
    ['empty', ''],
    ['scheme only: Bearer', 'Bearer'],
    ['scheme and space: Bearer ', 'Bearer '],
    ['scheme only: Basic', 'Basic'],
    ['Basic !!!', 'Basic !!!'],
    ['Basic, no colon', `Basic ${Buffer.from('__token__').toString('base64')}`],
    ['Basic, empty password', basic('__token__', '')],
    [
      'Basic, invalid UTF-8',
      `Basic ${Buffer.from([0x5f, 0x5f, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x5f, 0x5f, 0x3a, 0xff, 0xfe]).toString('base64')}`,
    ],
    ['Bearer, two words', `Bearer ${alice} extra`],
    ['unknown scheme with a valid token', `Token ${alice}`],
    ['Digest', 'Digest username="__token__", realm="x", nonce="1", uri="/", response="0"'],
    ['a valid token without a scheme', alice],
    ['a long token (8 KiB)', `Bearer ${'x'.repeat(8192)}`],
    ['a long Basic value (8 KiB)', basic('__token__', 'y'.repeat(6000))],
    ['non-ASCII (latin-1) token', 'Bearer t\u00e9st-token-0123456789abcdef'],
  ];

  it('on the session API, the mechanism routes and tus PATCH', async () => {
    const s = await newSession(alice);
    const hpb = await newFile(s, alice);
    const mp = await newFile(await newSession(alice), alice, MULTIPART);
    const tus = await newFile(await newSession(alice), alice, TUS);
    const targets: Req[] = [
      { method: 'POST', url: t.url, ...createBody() },
      { method: 'GET', url: s.links.session! },
      { method: 'POST', url: hpb.file.links.complete!, ...json({ meta: META }) },
      bytesRequest(hpb),
      multipartRequest(mp),
      patchRequest(tus),
    ];
    let cells = 0;
    for (const target of targets) {
      for (const [what, value] of MALFORMED) {
        const res = await send(target, value);
        expect(res.status, `${what} on ${target.method} ${target.url}`).toBe(401);
        unauthenticated(res);
        cells++;
      }
    }
    // Nothing was touched: the owner's requests still work.
    expect((await send(bytesRequest(hpb), bearer(alice))).status).toBe(204);
    expect((await send(patchRequest(tus), bearer(alice))).status).toBe(204);
    tally('auth cases', cells);
  });

  it('the scheme is case-insensitive (RFC 7235): bearer, BEARER and basic work', async () => {
    const s = await newSession(bob);
    for (const authorization of [`bearer ${bob}`, `BEARER ${bob}`, `basic ${Buffer.from(`__token__:${bob}`).toString('base64')}`]) {
      expect((await send({ method: 'GET', url: s.links.session! }, authorization)).status, authorization).toBe(200);
    }
    tally('auth cases', 3);
  });

  it('a header larger than the server accepts gets 431 problem+json, and the server keeps serving', async () => {
    const s = await newSession(alice);
    const res = await send({ method: 'GET', url: s.links.session! }, `Bearer ${'z'.repeat(64 * 1024)}`);
    problem(res, 431);
    expect((await send({ method: 'GET', url: s.links.session! }, bearer(alice))).status).toBe(200);
    tally('auth cases', 1);
  });
});

describe('PEP 694 Staged Previews and /simple/: no credentials, and one 404 for every wrong or stale stage URL', () => {
  it('the stage and the index need no credentials and ignore bad ones', async () => {
    const s = await newSession(bob);
    const f = await completedFile(s, bob);
    const stage = s.links.stage!;
    expect(stage).toBe(`${t.origin}/stage/${s['session-token']}/`);
    const urls = [
      stage,
      `${stage}${PROJECT}/`,
      `${stage}${PROJECT}/${f.filename}`,
      `${t.origin}/simple/`,
      `${t.origin}/simple/${PROJECT}/`,
    ];
    let cells = 0;
    for (const url of urls) {
      for (const authorization of [undefined, bearer('not-a-token-0123456789abcdef'), 'Basic !!!', '', bearer(carol), bearer(alice)]) {
        const res = await send({ method: 'GET', url }, authorization);
        expect(res.status, `${url} with ${authorization ?? 'no credentials'}`).toBe(200);
        expect(res.headers['www-authenticate']).toBeUndefined();
        if (url.endsWith('.whl')) expect(res.body).toBe(f.bytes.toString('utf8'));
        cells++;
      }
    }
    // The exempt mechanism routes: OPTIONS without credentials, the same answer for any ID.
    for (const mechanism of [MULTIPART, TUS]) {
      const file = await newFile(await newSession(alice), alice, mechanism);
      const url = file.file.mechanism.file_url ?? file.file.mechanism.upload_url;
      const known = await send({ method: 'OPTIONS', url, headers: tusHeaders });
      const unknown = await send({
        method: 'OPTIONS',
        url: withId(url, lastSegment(file.file.links['file-upload-session']!)),
        headers: tusHeaders,
      });
      for (const res of [known, unknown]) {
        expect(res.status).toBeLessThan(300);
        expect(res.headers['www-authenticate']).toBeUndefined();
      }
      expect(unknown.status).toBe(known.status);
      expect(unknown.headers['allow'] ?? unknown.headers['tus-extension']).toBe(known.headers['allow'] ?? known.headers['tus-extension']);
      cells += 2;
    }
    tally('auth cases', cells);
  });

  it('wrong, canceled and published stage tokens, and wrong paths under a good one, all answer the same 404', async () => {
    const good = await newSession(bob);
    const goodFile = await completedFile(good, bob);
    const canceled = await newSession(bob);
    const canceledFile = await completedFile(canceled, bob);
    const canceledStage = canceled.links.stage!;
    await expectStatus({ method: 'DELETE', url: canceled.links.session! }, bearer(bob), 204);
    const { s: published, f: publishedFile } = await publishedSession(bob);
    const token = good['session-token'];
    const flip = (tok: string) => `${tok.slice(0, -1)}${tok.endsWith('A') ? 'B' : 'A'}`;
    const base = `${t.origin}/stage/`;
    const wrong = [
      `${base}${UNKNOWN_ID}/`,
      `${base}${flip(token)}/`,
      `${base}${flip(token)}/${PROJECT}/`,
      `${base}${flip(token)}/${PROJECT}/${goodFile.filename}`,
      `${base}${token.toLowerCase() === token ? token.toUpperCase() : token.toLowerCase()}/`,
      `${base}short/`,
      `${base}${token}x/`,
      `${base}${'A'.repeat(300)}/`,
      `${base}${token}/other-project/`,
      `${base}${token}/${PROJECT}/nope-1.0-py3-none-any.whl`,
      `${base}${token}/${PROJECT}/${goodFile.filename}/deeper`,
      `${base}${token}/${PROJECT}/${goodFile.filename}.metadata.x`,
      canceledStage,
      `${canceledStage}${PROJECT}/`,
      `${canceledStage}${PROJECT}/${canceledFile.filename}`,
      published.links.stage!,
      `${published.links.stage!}${PROJECT}/`,
      `${published.links.stage!}${PROJECT}/${publishedFile.filename}`,
    ];
    // The good stage serves; the published file is on /simple/ instead.
    expect((await send({ method: 'GET', url: `${good.links.stage}${PROJECT}/${goodFile.filename}` })).status).toBe(200);
    expect((await send({ method: 'GET', url: `${t.origin}/simple/${PROJECT}/${publishedFile.filename}` })).status).toBe(200);
    let first: unknown;
    let cells = 0;
    for (const url of wrong) {
      for (const authorization of [undefined, bearer(alice)]) {
        const res = await send({ method: 'GET', url }, authorization);
        const doc = problem(res, 404, 'not-found');
        expect(res.headers['cache-control']).toBe('no-store');
        expect(res.headers['www-authenticate']).toBeUndefined();
        first ??= doc;
        expect(doc, `${url}: the same body whichever part was wrong`).toEqual(first);
        cells++;
      }
    }
    tally('auth cases', cells);
  });
});
