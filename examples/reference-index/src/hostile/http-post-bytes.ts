/**
 * `http-post-bytes` (PEP 694): the refusals of its e2e test (lengths, types, codings, credentials,
 * methods), its attestations_url, bodies cut or reset at random points, a client waiting for
 * `100 Continue`, and broken chunked framing reaching the route mid-body.
 */
import { attestation } from '@pep694/server/testing';
import type { HostileRequest } from './exchange.js';
import { brokenChunks } from './framing.js';
import { headers, int, problem, randomBytes, refusedEarly, sha256, status, type FrontDoor, type HostileGenerator } from './door.js';

const body: HostileGenerator = async (ctx) => {
  const s = await ctx.session('hostile-hpb');
  const bytes = randomBytes(ctx.random, 4096);
  const f = await ctx.file(s, 'hostile_hpb-1.0-py3-none-any.whl', bytes, 'http-post-bytes');
  const url = f.mechanism['file_url']!;
  const octets = (auth: string | undefined, extra: Record<string, string | undefined> = {}) =>
    headers({ Authorization: auth, 'Content-Type': 'application/octet-stream', ...extra });
  const post = (name: string, more: Partial<HostileRequest>): HostileRequest => ({
    name,
    method: 'POST',
    url,
    headers: octets(ctx.auth),
    body: bytes,
    ...more,
  });
  const longer = Buffer.concat([bytes, Buffer.from('tail')]);
  const out: HostileRequest[] = [
    post('a body shorter than the declared size', { body: bytes.subarray(0, 100), expect: problem(400, 'malformed-upload') }),
    post('a chunked body shorter than the declared size', {
      body: bytes.subarray(0, 100),
      chunked: true,
      expect: problem(400, 'malformed-upload'),
    }),
    post('a body longer than the declared size', { body: longer, expect: problem(413, 'payload-too-large') }),
    post('a chunked body longer than the declared size', { body: longer, chunked: true, expect: problem(413, 'payload-too-large') }),
    post('a Content-Length of 2^53', { contentLength: 2 ** 53, body: Buffer.alloc(0), expect: status(400, 413) }),
    post('application/zip', {
      headers: octets(ctx.auth, { 'Content-Type': 'application/zip' }),
      expect: problem(415, 'unsupported-media-type'),
    }),
    post('no Content-Type', { headers: headers({ Authorization: ctx.auth }), expect: problem(415, 'unsupported-media-type') }),
    post('Content-Encoding: gzip', {
      headers: octets(ctx.auth, { 'Content-Encoding': 'gzip' }),
      expect: problem(415, 'unsupported-media-type'),
    }),
    post('no credentials', { headers: octets(undefined), expect: problem(401, 'unauthenticated') }),
    post('an unknown token', { headers: octets('Bearer nope'), expect: problem(401, 'unauthenticated') }),
    post('no permission on the project', { headers: octets(ctx.noPermission), expect: problem(403, 'forbidden') }),
    post('no credentials, waiting for 100 Continue', {
      headers: octets(undefined),
      client: { kind: 'expect-continue' },
      expect: problem(401, 'unauthenticated'),
    }),
    post('no permission, waiting for 100 Continue', {
      headers: octets(ctx.noPermission),
      client: { kind: 'expect-continue' },
      expect: problem(403, 'forbidden'),
    }),
    post('an unknown file', { url: url.replace(/\/files\/[^/]+$/, '/files/AAAAAAAAAAAAAAAAAAAAAA'), expect: status(404) }),
    post('a traversal for the file id', { url: url.replace(/\/files\/[^/]+$/, '/files/..%2f..%2fsessions'), expect: status(400, 404) }),
    { name: 'GET file_url', method: 'GET', url, headers: octets(ctx.auth), expect: status(405) },
    { name: 'PUT file_url', method: 'PUT', url, headers: octets(ctx.auth), body: bytes, expect: status(405) },
    ...brokenChunks('POST file_url', url, octets(ctx.auth), bytes),
  ];
  // Cut or reset at random points (in the head, in the body): nothing to answer, nothing to keep.
  for (let i = 0; i < 6; i++) {
    const r = post(`cut after a random number of bytes (#${i})`, {});
    out.push({ ...r, client: { kind: 'cut', bytes: int(ctx.random, 1, 600 + bytes.length), reset: i % 2 === 1 } });
  }
  return out;
};

const attestations: HostileGenerator = async (ctx) => {
  const s = await ctx.session('hostile-hpb-att');
  const bytes = randomBytes(ctx.random, 64);
  const filename = 'hostile_hpb_att-1.0-py3-none-any.whl';
  const f = await ctx.file(s, filename, bytes, 'http-post-bytes');
  const url = f.mechanism['attestations_url']!;
  const jsonHeaders = (auth: string | undefined, type = 'application/json') => headers({ Authorization: auth, 'Content-Type': type });
  const post = (name: string, value: string | Uint8Array, more: Partial<HostileRequest> = {}): HostileRequest => ({
    name: `attestations: ${name}`,
    method: 'POST',
    url,
    headers: jsonHeaders(ctx.auth),
    body: Buffer.from(value),
    ...more,
  });
  const a = attestation(filename, sha256(bytes));
  return [
    post('not JSON', '[{', { expect: problem(400, 'malformed-json') }),
    post('invalid UTF-8', new Uint8Array([0x5b, 0xc3, 0x28, 0x5d]), { expect: problem(400, 'malformed-json') }),
    post('an object, not an array', JSON.stringify(a), { expect: problem(400, 'invalid-attestations') }),
    post('a wrong version', JSON.stringify([{ ...a, version: 2 }]), { expect: problem(400, 'invalid-attestations') }),
    post('about another file', JSON.stringify([attestation('other-1.0-py3-none-any.whl', sha256(bytes))]), {
      expect: problem(400, 'invalid-attestations'),
    }),
    post('nested 5000 deep', `${'['.repeat(5000)}${']'.repeat(5000)}`, { expect: status(400) }),
    post('over attestationsMaxBytes', `[${' '.repeat(2 * 1024 * 1024)}]`, { expect: refusedEarly(413, 'body-too-large') }),
    post('over attestationsMaxBytes, chunked', `[${' '.repeat(2 * 1024 * 1024)}]`, {
      chunked: true,
      expect: refusedEarly(413, 'body-too-large'),
    }),
    post('text/plain', JSON.stringify([a]), {
      headers: jsonHeaders(ctx.auth, 'text/plain'),
      expect: problem(415, 'unsupported-media-type'),
    }),
    post('a charset other than UTF-8', JSON.stringify([a]), {
      headers: jsonHeaders(ctx.auth, 'application/json; charset=latin1'),
      expect: problem(415, 'unsupported-media-type'),
    }),
    post('no credentials', JSON.stringify([a]), { headers: jsonHeaders(undefined), expect: problem(401, 'unauthenticated') }),
    post('no permission', JSON.stringify([a]), { headers: jsonHeaders(ctx.noPermission), expect: problem(403, 'forbidden') }),
    post('no credentials, waiting for 100 Continue', JSON.stringify([a]), {
      headers: jsonHeaders(undefined),
      client: { kind: 'expect-continue' },
      expect: problem(401, 'unauthenticated'),
    }),
    post('cut half-way', JSON.stringify([a]), { client: { kind: 'cut', bytes: 200 } }),
    ...brokenChunks('POST attestations_url', url, jsonHeaders(ctx.auth), Buffer.from(JSON.stringify([a]))),
  ];
};

export const httpPostBytes: FrontDoor = { name: 'http-post-bytes', generators: [body, attestations] };
