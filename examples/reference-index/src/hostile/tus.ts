/**
 * `vnd-pep694-tus`: the refusals of the plugin's tests (credentials, methods, tus headers, offsets,
 * lengths, types), PATCHes cut or reset at random points, a client waiting for `100 Continue`, and
 * broken chunked framing mid-PATCH. A PATCH that gets through keeps its bytes (tus resumes), so the
 * upload's offset moves during the run: where the answer depends on it, any of the right ones goes.
 */
import type { HostileRequest } from './exchange.js';
import { brokenChunks } from './framing.js';
import { headers, int, problem, randomBytes, status, type FrontDoor, type HostileGenerator } from './door.js';

const MECHANISM = 'vnd-pep694-tus';
const PATCH_TYPE = 'application/offset+octet-stream';
/** A PATCH whose offset may no longer be the upload's by the time it runs. */
const OFFSET_DEPENDENT = status(204, 400, 409, 413);

const requests: HostileGenerator = async (ctx) => {
  const s = await ctx.session('hostile-tus');
  const bytes = randomBytes(ctx.random, 4096);
  const f = await ctx.file(s, 'hostile_tus-1.0-py3-none-any.whl', bytes, MECHANISM);
  const url = f.mechanism['upload_url']!;
  const tus = (auth: string | null, extra: Record<string, string | undefined> = {}) =>
    headers({ 'Tus-Resumable': '1.0.0', Authorization: auth ?? undefined, ...extra });
  const patchHeaders = (extra: Record<string, string | undefined> = {}, auth: string | null = ctx.auth) =>
    tus(auth, { 'Content-Type': PATCH_TYPE, 'Upload-Offset': '0', ...extra });
  const patch = (name: string, more: Partial<HostileRequest>): HostileRequest => ({
    name: `PATCH: ${name}`,
    method: 'PATCH',
    url,
    headers: patchHeaders(),
    body: bytes.subarray(0, 100),
    ...more,
  });
  const out: HostileRequest[] = [
    { name: 'HEAD without Tus-Resumable', method: 'HEAD', url, headers: headers({ Authorization: ctx.auth }), expect: status(412) },
    { name: 'HEAD without credentials', method: 'HEAD', url, headers: tus(null), expect: status(401) },
    { name: 'HEAD with no permission', method: 'HEAD', url, headers: tus(ctx.noPermission), expect: status(403) },
    { name: 'DELETE with no permission', method: 'DELETE', url, headers: tus(ctx.noPermission), expect: problem(403, 'forbidden') },
    { name: 'DELETE without credentials', method: 'DELETE', url, headers: tus(null), expect: problem(401, 'unauthenticated') },
    {
      name: 'POST to the upload',
      method: 'POST',
      url,
      headers: tus(ctx.auth, { 'Upload-Length': '10' }),
      expect: problem(405, 'method-not-allowed'),
    },
    {
      name: 'POST to the collection',
      method: 'POST',
      url: url.replace(/\/files\/[^/]+$/, '/files'),
      headers: tus(ctx.auth, { 'Upload-Length': '10' }),
      expect: problem(405, 'method-not-allowed'),
    },
    { name: 'GET the upload', method: 'GET', url, headers: tus(ctx.auth), expect: problem(405, 'method-not-allowed') },
    {
      name: 'HEAD an unknown upload',
      method: 'HEAD',
      url: url.replace(/\/files\/[^/]+$/, '/files/AAAAAAAAAAAAAAAAAAAAAA'),
      headers: tus(ctx.auth),
      expect: status(404),
    },
    patch('no credentials', { headers: patchHeaders({}, null), expect: problem(401, 'unauthenticated') }),
    patch('an unknown token', { headers: patchHeaders({}, 'Bearer nope'), expect: problem(401, 'unauthenticated') }),
    patch('no permission', { headers: patchHeaders({}, ctx.noPermission), expect: problem(403, 'forbidden') }),
    patch('no credentials, waiting for 100 Continue', {
      headers: patchHeaders({}, null),
      client: { kind: 'expect-continue' },
      expect: problem(401, 'unauthenticated'),
    }),
    patch('a bad Content-Type, waiting for 100 Continue', {
      headers: patchHeaders({ 'Content-Type': 'text/plain' }),
      client: { kind: 'expect-continue' },
      expect: problem(415, 'unsupported-media-type'),
    }),
    patch('application/octet-stream', {
      headers: patchHeaders({ 'Content-Type': 'application/octet-stream' }),
      expect: problem(415, 'unsupported-media-type'),
    }),
    patch('Content-Encoding: gzip', {
      headers: patchHeaders({ 'Content-Encoding': 'gzip' }),
      expect: problem(415, 'unsupported-media-type'),
    }),
    patch('no Upload-Offset', { headers: patchHeaders({ 'Upload-Offset': undefined }), expect: problem(400, 'invalid-parameter') }),
    ...['abc', '-1', '1e3', ' ', '99999999999999999999', '0x10'].map((v) =>
      patch(`Upload-Offset ${JSON.stringify(v)}`, {
        headers: patchHeaders({ 'Upload-Offset': v }),
        expect: problem(400, 'invalid-parameter'),
      }),
    ),
    patch('an Upload-Length', { headers: patchHeaders({ 'Upload-Length': '10' }), expect: problem(400, 'invalid-parameter') }),
    patch('past the size by Content-Length', {
      body: Buffer.concat([bytes, Buffer.from('more')]),
      expect: problem(413, 'payload-too-large'),
    }),
    patch('past the size, chunked', { body: Buffer.concat([bytes, Buffer.from('more')]), chunked: true, expect: OFFSET_DEPENDENT }),
    patch('at an offset past the size', {
      headers: patchHeaders({ 'Upload-Offset': String(bytes.length + 10) }),
      expect: problem(413, 'payload-too-large'),
    }),
    patch('at a wrong offset', { headers: patchHeaders({ 'Upload-Offset': '7' }), body: bytes.subarray(7, 17), expect: OFFSET_DEPENDENT }),
    patch('without Tus-Resumable', {
      headers: headers({ Authorization: ctx.auth, 'Content-Type': PATCH_TYPE, 'Upload-Offset': '0' }),
      expect: status(412),
    }),
    ...brokenChunks('PATCH upload_url', url, patchHeaders(), bytes.subarray(0, 200), 'PATCH').map((r) => ({
      ...r,
      expect: { ...r.expect!, status: [...r.expect!.status, 204] },
    })),
  ];
  for (let i = 0; i < 6; i++) {
    const r = patch(`cut after a random number of bytes (#${i})`, {});
    out.push({ ...r, client: { kind: 'cut', bytes: int(ctx.random, 1, 400), reset: i % 2 === 1 } });
  }
  return out;
};

export const tus: FrontDoor = { name: MECHANISM, generators: [requests] };
