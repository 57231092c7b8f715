/**
 * `vnd-pep694-resumable-i6` and `-i8` (the IETF "Resumable Uploads for HTTP" draft): the refusals
 * of the plugin's tests (credentials, methods, the draft's fields, offsets, lengths, types),
 * creations and appends cut or reset at random points, clients waiting for `100 Continue`, and
 * broken chunked framing mid-append. An append that gets through keeps its bytes (the client
 * resumes), so the upload's offset moves during the run: where the answer depends on it, any of the
 * right ones goes.
 */
import type { HostileRequest } from './exchange.js';
import { brokenChunks } from './framing.js';
import { headers, int, problem, randomBytes, status, type FrontDoor, type HostileGenerator } from './door.js';

const PATCH_TYPE = 'application/partial-upload';
/** An append whose offset may no longer be the upload's by the time it runs (or that completed it). */
const OFFSET_DEPENDENT = status(201, 204, 400, 409, 413);

const generator =
  (version: 6 | 8): HostileGenerator =>
  async (ctx) => {
    const mechanism = `vnd-pep694-resumable-i${version}`;
    const s = await ctx.session(`hostile-resumable-i${version}`);
    const bytes = randomBytes(ctx.random, 4096);
    const f = await ctx.file(s, `hostile_resumable_i${version}-1.0-py3-none-any.whl`, bytes, mechanism);
    const creation = f.mechanism['creation_url']!;
    const draft = (auth: string | null, extra: Record<string, string | undefined> = {}) =>
      headers({ 'Upload-Draft-Interop-Version': String(version), Authorization: auth ?? undefined, ...extra });
    // A valid careful creation first: the upload resource the appends go to.
    const created = await fetch(creation, {
      method: 'POST',
      headers: Object.fromEntries(draft(ctx.auth, { 'Upload-Complete': '?0', 'Upload-Length': String(bytes.length) })),
    });
    if (created.status !== 201) throw new Error(`${mechanism}: creation answered ${created.status}: ${await created.text()}`);
    const url = new URL(created.headers.get('location')!, creation).href;
    const appendHeaders = (extra: Record<string, string | undefined> = {}, auth: string | null = ctx.auth) =>
      draft(auth, { 'Content-Type': PATCH_TYPE, 'Upload-Offset': '0', 'Upload-Complete': '?0', ...extra });
    const append = (name: string, more: Partial<HostileRequest>): HostileRequest => ({
      name: `PATCH: ${name}`,
      method: 'PATCH',
      url,
      headers: appendHeaders(),
      body: bytes.subarray(0, 100),
      ...more,
    });
    const create = (name: string, more: Partial<HostileRequest>): HostileRequest => ({
      name: `POST creation_url: ${name}`,
      method: 'POST',
      url: creation,
      headers: draft(ctx.auth, { 'Upload-Complete': '?1' }),
      body: bytes,
      ...more,
    });
    const out: HostileRequest[] = [
      { name: 'HEAD without credentials', method: 'HEAD', url, headers: draft(null), expect: status(401) },
      { name: 'HEAD with no permission', method: 'HEAD', url, headers: draft(ctx.noPermission), expect: status(403) },
      {
        name: 'HEAD a guessed upload token',
        method: 'HEAD',
        url: url.replace(/[^/]+$/, 'A'.repeat(22)),
        headers: draft(ctx.auth),
        expect: status(404),
      },
      { name: 'DELETE with no permission', method: 'DELETE', url, headers: draft(ctx.noPermission), expect: problem(403, 'forbidden') },
      { name: 'DELETE without credentials', method: 'DELETE', url, headers: draft(null), expect: problem(401, 'unauthenticated') },
      { name: 'POST to the upload resource', method: 'POST', url, headers: draft(ctx.auth), expect: problem(405, 'method-not-allowed') },
      { name: 'PUT on creation_url', method: 'PUT', url: creation, headers: draft(ctx.auth), expect: problem(405, 'method-not-allowed') },
      {
        name: 'OPTIONS without credentials',
        method: 'OPTIONS',
        url: creation,
        headers: draft(null),
        expect: problem(401, 'unauthenticated'),
      },
      create('no credentials', { headers: draft(null, { 'Upload-Complete': '?1' }), expect: problem(401, 'unauthenticated') }),
      create('no permission, waiting for 100 Continue', {
        headers: draft(ctx.noPermission, { 'Upload-Complete': '?1' }),
        client: { kind: 'expect-continue' },
        expect: problem(403, 'forbidden'),
      }),
      create('Upload-Offset on a creation', {
        headers: draft(ctx.auth, { 'Upload-Complete': '?1', 'Upload-Offset': '0' }),
        expect: problem(400, 'invalid-parameter'),
      }),
      create('Upload-Complete "true"', {
        headers: draft(ctx.auth, { 'Upload-Complete': 'true' }),
        expect: problem(400, 'invalid-parameter'),
      }),
      create('Upload-Length and Content-Length disagree', {
        headers: draft(ctx.auth, { 'Upload-Complete': '?1', 'Upload-Length': String(bytes.length - 1) }),
        expect: problem(400, 'inconsistent-upload-length'),
      }),
      create('past max-size by Upload-Length', {
        headers: draft(ctx.auth, { 'Upload-Complete': '?0', 'Upload-Length': String(bytes.length + 1) }),
        body: new Uint8Array(0),
        expect: problem(413, 'payload-too-large'),
      }),
      create('a malformed Repr-Digest', {
        headers: draft(ctx.auth, { 'Upload-Complete': '?1', 'Repr-Digest': 'sha-256=:x:' }),
        expect: problem(400, 'invalid-parameter'),
      }),
      create('Content-Encoding: gzip', {
        headers: draft(ctx.auth, { 'Upload-Complete': '?1', 'Content-Encoding': 'gzip' }),
        expect: problem(415, 'unsupported-media-type'),
      }),
      append('no credentials', { headers: appendHeaders({}, null), expect: problem(401, 'unauthenticated') }),
      append('an unknown token', { headers: appendHeaders({}, 'Bearer nope'), expect: problem(401, 'unauthenticated') }),
      append('no permission', { headers: appendHeaders({}, ctx.noPermission), expect: problem(403, 'forbidden') }),
      append('no credentials, waiting for 100 Continue', {
        headers: appendHeaders({}, null),
        client: { kind: 'expect-continue' },
        expect: problem(401, 'unauthenticated'),
      }),
      append('a bad Content-Type, waiting for 100 Continue', {
        headers: appendHeaders({ 'Content-Type': 'text/plain' }),
        client: { kind: 'expect-continue' },
        expect: problem(415, 'unsupported-media-type'),
      }),
      append('application/offset+octet-stream (tus)', {
        headers: appendHeaders({ 'Content-Type': 'application/offset+octet-stream' }),
        expect: problem(415, 'unsupported-media-type'),
      }),
      append('no Upload-Offset', { headers: appendHeaders({ 'Upload-Offset': undefined }), expect: problem(400, 'invalid-parameter') }),
      ...['abc', '-1', '1e3', ' ', '99999999999999999999', '0x10'].map((v) =>
        append(`Upload-Offset ${JSON.stringify(v)}`, {
          headers: appendHeaders({ 'Upload-Offset': v }),
          expect: problem(400, 'invalid-parameter'),
        }),
      ),
      ...['?2', 'yes', '1'].map((v) =>
        append(`Upload-Complete ${JSON.stringify(v)}`, {
          headers: appendHeaders({ 'Upload-Complete': v }),
          expect: problem(400, 'invalid-parameter'),
        }),
      ),
      append('past the size by Content-Length', {
        body: Buffer.concat([bytes, Buffer.from('more')]),
        expect: status(400, 409, 413),
      }),
      append('past the size, chunked', { body: Buffer.concat([bytes, Buffer.from('more')]), chunked: true, expect: OFFSET_DEPENDENT }),
      append('at an offset past the size', {
        headers: appendHeaders({ 'Upload-Offset': String(bytes.length + 10) }),
        expect: status(400, 409),
      }),
      append('at a wrong offset', {
        headers: appendHeaders({ 'Upload-Offset': '7' }),
        body: bytes.subarray(7, 17),
        expect: OFFSET_DEPENDENT,
      }),
      append('an inconsistent Upload-Length', { headers: appendHeaders({ 'Upload-Length': '10' }), expect: status(400, 409) }),
      ...brokenChunks('PATCH upload resource', url, appendHeaders(), bytes.subarray(0, 200), 'PATCH').map((r) => ({
        ...r,
        expect: { ...r.expect!, status: [...r.expect!.status, 201, 204, 409] },
      })),
    ];
    for (let i = 0; i < 6; i++) {
      const r = append(`cut after a random number of bytes (#${i})`, {});
      out.push({ ...r, client: { kind: 'cut', bytes: int(ctx.random, 1, 400), reset: i % 2 === 1 } });
    }
    return out;
  };

export const resumableI6: FrontDoor = { name: 'vnd-pep694-resumable-i6', generators: [generator(6)] };
export const resumableI8: FrontDoor = { name: 'vnd-pep694-resumable-i8', generators: [generator(8)] };
