/**
 * Part orderings that reach the form before its staging write is open (issue #21, finding 1): a
 * tiny `content` part followed at once by another part that fails the form, or a client that goes
 * away right after the `content` part's headers. The file part's stages (busboy's file stream, the
 * meter, the staging write) then exist, or are about to, while nothing pipes them yet; an 'error'
 * emitted by one of them with no listener would end the process. Each case must get its problem,
 * keep nothing, and leave the server answering.
 *
 * Two ways to get there: the whole body in one write (busboy parses it in one go, so the later
 * part fails the form in the same tick as the `content` part's 'file' event, before `stage()` can
 * resolve), and a staging write held open by the test until the later part has arrived.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '@pep694/server';
import { tally, type TestServer } from '@pep694/server/testing';
import {
  ALICE,
  attestation,
  BOUNDARY,
  bytesReceived,
  complete,
  createFile,
  createSession,
  formBody,
  formType,
  META,
  multipartHead,
  postForm,
  rawPost,
  sha256,
  sleep,
  SpyBlobStore,
  startServer,
  strayBytes,
  until,
  WHEEL,
  type FileSession,
  type Part,
} from './test-support.js';

let t: TestServer;
let spy: SpyBlobStore;
let blobDir: string;
beforeEach(async () => {
  blobDir = mkdtempSync(join(tmpdir(), 'multipart-orderings-'));
  spy = new SpyBlobStore(await FsBlobStore.open(blobDir));
  t = await startServer({}, { blobs: spy });
});
afterEach(async () => {
  spy.releaseStaging();
  await t.close();
  rmSync(blobDir, { recursive: true, force: true });
});

/** A tiny file: its part is over long before a staging write could open. */
const bytes = randomBytes(16);
const content = (body: Uint8Array | string = bytes): Part => ({ name: 'content', filename: WHEEL, type: 'application/octet-stream', body });
const field = (name: string, value: string): Part => ({ name, body: value });
const a = () => attestation(WHEEL, sha256(bytes));

/** The form after the `content` part (which comes first): what fails the form. */
interface Case {
  readonly name: string;
  /** The parts after `content` (or the whole body, for a case that frames it itself). */
  readonly after: () => Buffer;
  /** The `content` part's body; the tiny file by default. */
  readonly content?: Buffer;
  readonly chunked?: boolean;
  readonly status: number;
  readonly code: string;
  readonly detail?: RegExp;
}

/** The `content` part and `rest`, framed: `rest` is the bytes of the parts after it, then the closing delimiter. */
function split(c: Case): { first: Buffer; rest: Buffer } {
  const first = formBody([content(c.content ?? bytes)], { end: false });
  return { first, rest: c.after() };
}
/** Parts framed without a preceding `content` part, closed. */
const parts = (ps: Part[], opts: { end?: boolean; epilogue?: string } = {}) => formBody(ps, opts);

const cases: Case[] = [
  {
    name: 'a second content file part',
    after: () => parts([content()]),
    status: 400,
    code: 'malformed-upload',
    detail: /more than one file part/,
  },
  {
    name: 'a file part of another name',
    after: () => parts([{ name: 'other', filename: 'x.bin', body: 'x' }]),
    status: 400,
    code: 'malformed-upload',
    detail: /more than one file part/,
  },
  {
    name: 'attestations sent as a file part',
    after: () => parts([{ name: 'attestations', filename: 'a.json', type: 'application/json', body: JSON.stringify([a()]) }]),
    status: 400,
    code: 'malformed-upload',
    detail: /more than one file part/,
  },
  {
    name: 'an unknown field',
    after: () => parts([field(':action', 'file_upload')]),
    status: 400,
    code: 'invalid-parameter',
    detail: /unknown field ":action"/,
  },
  {
    name: 'content again, as a plain field',
    after: () => parts([field('content', 'hello')]),
    status: 400,
    code: 'malformed-upload',
    detail: /as a plain field/,
  },
  {
    name: 'attestations that are not JSON',
    after: () => parts([field('attestations', '[{')]),
    status: 400,
    code: 'invalid-attestations',
    detail: /not JSON/,
  },
  {
    name: 'invalid attestation objects',
    after: () => parts([field('attestations', JSON.stringify([{ ...a(), version: 2 }]))]),
    status: 400,
    code: 'invalid-attestations',
  },
  {
    name: 'attestations about another file',
    after: () => parts([field('attestations', JSON.stringify([attestation('other-1.0-py3-none-any.whl', sha256(bytes))]))]),
    status: 400,
    code: 'invalid-attestations',
  },
  {
    name: 'two attestations fields (busboy fieldsLimit)',
    after: () => parts([field('attestations', JSON.stringify([a()])), field('attestations', JSON.stringify([a()]))]),
    status: 400,
    code: 'malformed-upload',
    detail: /too many fields/,
  },
  {
    name: 'too many parts (busboy partsLimit)',
    after: () =>
      parts([
        field('attestations', JSON.stringify([a()])),
        { disposition: null, type: 'text/plain', body: 'x' },
        { disposition: null, type: 'text/plain', body: 'y' },
      ]),
    status: 400,
    code: 'malformed-upload',
    detail: /too many parts/,
  },
  {
    name: 'a malformed part header',
    after: () => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition form-data name=x\r\n\r\nx\r\n--${BOUNDARY}--\r\n`),
    status: 400,
    code: 'malformed-upload',
  },
  {
    name: 'the end of the body, without the closing delimiter',
    after: () => Buffer.alloc(0),
    status: 400,
    code: 'malformed-upload',
    detail: /Unexpected end of form/,
  },
  {
    name: 'an attestations field over attestationsMaxBytes (busboy fieldSize)',
    after: () => parts([field('attestations', `[${' '.repeat(1024 * 1024)}]`)]),
    status: 413,
    code: 'body-too-large',
  },
  {
    name: 'an endless epilogue, chunked (over size + attestationsMaxBytes + 64 KiB)',
    after: () => parts([], { epilogue: 'e'.repeat(1024 * 1024 + 100 * 1024) }),
    chunked: true,
    status: 413,
    code: 'payload-too-large',
    detail: /plus the form around it/,
  },
  {
    name: 'nothing more, but a content part one byte longer than declared',
    content: Buffer.concat([bytes, Buffer.from('!')]),
    after: () => parts([]),
    status: 413,
    code: 'payload-too-large',
  },
  {
    name: 'nothing more, but a content part shorter than declared',
    content: bytes.subarray(0, 8),
    after: () => parts([]),
    chunked: true,
    status: 400,
    code: 'malformed-upload',
    detail: /had 8 bytes/,
  },
];

async function expectProblem(res: { status: number; headers: Record<string, unknown>; body: string; json(): any }, c: Case) {
  expect(res.status, res.body).toBe(c.status);
  expect(res.headers['content-type']).toBe('application/problem+json');
  const problem = res.json();
  expect(problem).toMatchObject({ code: c.code, status: c.status, meta: META });
  if (c.detail) expect(problem.detail).toMatch(c.detail);
}

/** Nothing staged, nothing half-written, no bytes counted; and the server takes the right form at once. */
async function expectNothingKeptAndStillServing(file: FileSession) {
  await until(async () => (await strayBytes(t, file)).temp.length === 0);
  expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
  expect(await bytesReceived(file)).toBe(0);
  const ok = await postForm(file, formBody([content()]));
  expect(ok.status, JSON.stringify(ok.body)).toBe(204);
  const done = await complete(file);
  expect(done.status, JSON.stringify(done.body)).toBe(201);
}

const headers = { Authorization: ALICE, 'Content-Type': formType() };

describe('vnd-<operator>-multipart: a part that fails the form before the staging write is open', () => {
  it.each(cases)('in one write: a tiny content part, then $name: $status $code', async (c) => {
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const { first, rest } = split(c);
    const body = Buffer.concat([first, rest]);
    const res = await rawPost(file.mechanism.file_url, { headers, chunks: [body], contentLength: c.chunked ? null : body.length }).response;
    await expectProblem(res, c);
    await expectNothingKeptAndStillServing(file);
    tally('hostile cases');
  });

  it.each(cases)('while staging is held open: a tiny content part, then $name: $status $code', async (c) => {
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const { first, rest } = split(c);
    spy.holdStaging();
    const post = rawPost(file.mechanism.file_url, {
      headers,
      chunks: [first],
      contentLength: c.chunked ? null : first.length + rest.length,
      hold: true,
    });
    await post.written;
    await until(() => spy.stagesHeld === 1); // the content part's 'file' has arrived; its staging write is opening
    post.req.end(rest);
    await sleep(50); // the rest reaches the parser (loopback) while the staging write is still opening
    spy.releaseStaging();
    await expectProblem(await post.response, c);
    await expectNothingKeptAndStillServing(file);
    tally('hostile cases');
  });
});

describe('vnd-<operator>-multipart: a client that goes away before the staging write is open', () => {
  /** Connections the server holds now (keep-alive ones of earlier requests count too). */
  const connections = () => new Promise<number>((resolve, reject) => t.http.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  // busboy emits 'file' once it has parsed the part's headers; it holds back a trailing CRLF (it
  // could start the next delimiter) until one more byte comes, so the headers go with one byte of the file.
  const afterHeaders = () => Buffer.concat([multipartHead().head, bytes.subarray(0, 1)]);
  const afterPart = () => formBody([content()], { end: false });
  it.each([
    { name: 'right after the content part headers', body: afterHeaders, held: false },
    { name: 'right after the content part headers, staging held open', body: afterHeaders, held: true },
    { name: 'right after the whole (tiny) content part', body: afterPart, held: false },
    { name: 'right after the whole (tiny) content part, staging held open', body: afterPart, held: true },
  ])('$name: nothing is kept and the server still answers', async ({ body, held }) => {
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const before = await connections();
    if (held) spy.holdStaging();
    const head = body();
    const stages = spy.stages;
    const post = rawPost(file.mechanism.file_url, { headers, chunks: [head], contentLength: head.length + 1000, hold: true });
    // The content part's 'file' event has come: its staging write is opening (held, or not).
    await until(() => spy.stages === stages + 1);
    post.req.destroy();
    await until(async () => (await connections()) <= before); // the server has seen the close
    if (held) spy.releaseStaging();
    await expect(post.response).rejects.toThrow();
    await expectNothingKeptAndStillServing(file);
    tally('hostile cases');
  });
});
