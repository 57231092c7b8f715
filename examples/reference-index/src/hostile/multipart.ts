/**
 * `vnd-pep694-multipart`: the refusals of the plugin's e2e test (parts, fields, limits, framing,
 * types, lengths), the part orderings of issue #21 (a tiny `content` part followed at once by a
 * part that fails the form, before the staging write is open), a client gone right after the
 * `content` part's headers, foreign `Origin`s, `100 Continue`, and broken chunked framing.
 */
import { attestation } from '@pep694/server/testing';
import { headBytes, type HostileRequest } from './exchange.js';
import { brokenChunks } from './framing.js';
import { headers, int, problem, randomBytes, refusedEarly, sha256, status, type FrontDoor, type HostileGenerator } from './door.js';

const MECHANISM = 'vnd-pep694-multipart';
const BOUNDARY = 'hostile-boundary-5e1d';

interface Part {
  readonly name?: string;
  readonly filename?: string;
  readonly type?: string;
  readonly headers?: readonly string[];
  /** Replaces the Content-Disposition line (`null`: none). */
  readonly disposition?: string | null;
  readonly body: Uint8Array | string;
}

/** A multipart/form-data body of `parts`; `end: false` leaves out the closing delimiter. */
function form(parts: readonly Part[], opts: { boundary?: string; end?: boolean; preamble?: string; epilogue?: string } = {}): Buffer {
  const b = opts.boundary ?? BOUNDARY;
  const out: Buffer[] = [];
  if (opts.preamble) out.push(Buffer.from(`${opts.preamble}\r\n`));
  for (const p of parts) {
    const lines = [`--${b}`];
    const disposition =
      p.disposition !== undefined
        ? p.disposition
        : `Content-Disposition: form-data; name="${p.name ?? ''}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    if (disposition !== null) lines.push(disposition);
    if (p.type) lines.push(`Content-Type: ${p.type}`);
    lines.push(...(p.headers ?? []));
    out.push(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  if (opts.end !== false) out.push(Buffer.from(`--${b}--\r\n${opts.epilogue ?? ''}`));
  return Buffer.concat(out);
}
const formType = (boundary = BOUNDARY) => `multipart/form-data; boundary=${boundary}`;

/** The form's refusals of the plugin's e2e test, against a 64 KiB file. */
const forms: HostileGenerator = async (ctx) => {
  const s = await ctx.session('hostile-multipart');
  const filename = 'hostile_multipart-1.0-py3-none-any.whl';
  const bytes = randomBytes(ctx.random, 64 * 1024);
  const f = await ctx.file(s, filename, bytes, MECHANISM);
  const url = f.mechanism['file_url']!;
  const content = (b: Uint8Array | string = bytes): Part => ({ name: 'content', filename, type: 'application/octet-stream', body: b });
  const field = (name: string, value: unknown): Part => ({ name, body: typeof value === 'string' ? value : JSON.stringify(value) });
  const a = () => attestation(filename, sha256(bytes));
  const long = 'x'.repeat(71);
  const h = (type: string | undefined = formType(), extra: Record<string, string> = {}) =>
    headers({ Authorization: ctx.auth, 'Content-Type': type, ...extra });
  const post = (name: string, body: Buffer, expect: HostileRequest['expect'], more: Partial<HostileRequest> = {}): HostileRequest => ({
    name,
    method: 'POST',
    url,
    headers: h(),
    body,
    expect,
    ...more,
  });
  return [
    post('a missing content part', form([field('attestations', [a()])]), problem(400, 'malformed-upload'), { chunked: true }),
    post('an empty form', form([]), problem(400, 'malformed-upload'), { chunked: true }),
    post('two content file parts', form([content(), content()]), problem(400, 'malformed-upload')),
    post(
      'a second file part of another name',
      form([content(), { name: 'other', filename: 'x', body: 'x' }]),
      problem(400, 'malformed-upload'),
    ),
    post('an unknown field', form([field(':action', 'file_upload'), content()]), problem(400, 'invalid-parameter')),
    post('an unknown file part', form([{ name: 'file', filename, body: bytes }]), problem(400, 'invalid-parameter')),
    post('content sent as a plain field', form([field('content', 'hello')]), problem(400, 'malformed-upload'), { chunked: true }),
    post(
      'attestations sent as a file part',
      form([{ name: 'attestations', filename: 'a.json', body: JSON.stringify([a()]) }, content()]),
      problem(400, 'malformed-upload'),
    ),
    post(
      'two attestations fields',
      form([field('attestations', [a()]), field('attestations', [a()]), content()]),
      problem(400, 'malformed-upload'),
    ),
    post(
      'too many parts',
      form([
        content(),
        field('attestations', [a()]),
        { disposition: null, type: 'text/plain', body: 'x' },
        { disposition: null, type: 'text/plain', body: 'y' },
      ]),
      problem(400, 'malformed-upload'),
    ),
    post(
      'parts that are not form-data',
      form([
        { disposition: 'Content-Disposition: attachment', body: 'x' },
        { disposition: null, body: 'y' },
        { disposition: null, body: 'z' },
        content(),
      ]),
      problem(400, 'malformed-upload'),
    ),
    post(
      'attestations over attestationsMaxBytes',
      form([field('attestations', `[${' '.repeat(1024 * 1024)}]`), content()]),
      refusedEarly(413, 'body-too-large'),
    ),
    post('attestations that are not JSON', form([field('attestations', '[{'), content()]), problem(400, 'invalid-attestations')),
    post(
      'attestations about another file',
      form([field('attestations', [attestation('other-1.0-py3-none-any.whl', sha256(bytes))]), content()]),
      problem(400, 'invalid-attestations'),
    ),
    post(
      'invalid attestation objects',
      form([field('attestations', [{ ...a(), version: 2 }]), content()]),
      problem(400, 'invalid-attestations'),
    ),
    post('no closing delimiter', form([content()], { end: false }), problem(400, 'malformed-upload')),
    post('a body cut inside the file part', form([content()]).subarray(0, 40_000), problem(400, 'malformed-upload')),
    post('another boundary', form([content()], { boundary: 'other-boundary' }), problem(400, 'malformed-upload')),
    post(
      'a malformed part header',
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition form-data name=content\r\n\r\nx\r\n--${BOUNDARY}--\r\n`),
      problem(400, 'malformed-upload'),
    ),
    post('garbage instead of a form', randomBytes(ctx.random, 70_000), problem(400, 'malformed-upload')),
    post('a Content-Type without boundary', form([content()]), problem(400, 'malformed-upload'), { headers: h('multipart/form-data') }),
    post('a boundary of 71 characters', form([content()], { boundary: long }), problem(400, 'malformed-upload'), {
      headers: h(formType(long)),
    }),
    post('application/octet-stream', Buffer.from(bytes), problem(415, 'unsupported-media-type'), {
      headers: h('application/octet-stream'),
    }),
    post('x-www-form-urlencoded', Buffer.from('content=abc'), problem(415, 'unsupported-media-type'), {
      headers: h('application/x-www-form-urlencoded'),
    }),
    post('multipart/mixed', form([content()]), problem(415, 'unsupported-media-type'), {
      headers: h(`multipart/mixed; boundary=${BOUNDARY}`),
    }),
    post('no Content-Type', form([content()]), problem(415, 'unsupported-media-type'), { headers: headers({ Authorization: ctx.auth }) }),
    post('Content-Encoding: gzip', form([content()]), problem(415, 'unsupported-media-type'), {
      headers: h(formType(), { 'Content-Encoding': 'gzip' }),
    }),
    post(
      'a base64 part',
      form([{ ...content(Buffer.from(bytes).toString('base64')), headers: ['Content-Transfer-Encoding: base64'] }]),
      problem(415, 'unsupported-media-type'),
    ),
    post('a file part one byte longer', form([content(Buffer.concat([bytes, Buffer.from('!')]))]), problem(413, 'payload-too-large')),
    post('a chunked file part twice as long', form([content(Buffer.concat([bytes, bytes]))]), problem(413, 'payload-too-large'), {
      chunked: true,
    }),
    post('a file part shorter than declared', form([content(bytes.subarray(0, 1000))]), problem(400, 'malformed-upload'), {
      chunked: true,
    }),
    post('a Content-Length smaller than the size', form([content(bytes.subarray(0, 1000))]), problem(400, 'malformed-upload')),
    post(
      'an endless preamble, chunked',
      Buffer.concat([Buffer.alloc(1024 * 1024 + 200 * 1024, 'p'), form([content()])]),
      refusedEarly(413, 'payload-too-large'),
      { chunked: true },
    ),
    post('no credentials', form([content()]), problem(401, 'unauthenticated'), { headers: headers({ 'Content-Type': formType() }) }),
    post('no permission', form([content()]), problem(403, 'forbidden'), {
      headers: headers({ Authorization: ctx.noPermission, 'Content-Type': formType() }),
    }),
    post('no credentials, waiting for 100 Continue', form([content()]), problem(401, 'unauthenticated'), {
      headers: headers({ 'Content-Type': formType() }),
      client: { kind: 'expect-continue' },
    }),
    ...['https://evil.example', 'null', 'http://user@127.0.0.1', `${new URL(url).origin}/path`, `https://${new URL(url).host}`].map(
      (origin) =>
        post(`a POST from the page of ${origin}`, form([content()]), problem(403, 'forbidden'), {
          headers: h(formType(), { Origin: origin }),
        }),
    ),
    { name: 'GET file_url', method: 'GET', url, headers: h(), expect: status(405) },
    ...brokenChunks('POST file_url', url, h(), form([content()])),
  ];
};

/**
 * Issue #21: a tiny `content` part followed at once, in the same write, by a part that fails the
 * form (the failure comes while the staging write is still opening), and clients gone right after
 * the `content` part's headers.
 */
const orderings: HostileGenerator = async (ctx) => {
  const s = await ctx.session('hostile-orderings');
  const filename = 'hostile_orderings-1.0-py3-none-any.whl';
  const bytes = randomBytes(ctx.random, 16);
  const f = await ctx.file(s, filename, bytes, MECHANISM);
  const url = f.mechanism['file_url']!;
  const content = (b: Uint8Array | string = bytes): Part => ({ name: 'content', filename, type: 'application/octet-stream', body: b });
  const field = (name: string, value: unknown): Part => ({ name, body: typeof value === 'string' ? value : JSON.stringify(value) });
  const a = () => attestation(filename, sha256(bytes));
  const first = form([content()], { end: false });
  const then = (name: string, rest: Buffer, expect: HostileRequest['expect'], chunked = false): HostileRequest => ({
    name: `a tiny content part, then ${name}`,
    method: 'POST',
    url,
    headers: headers({ Authorization: ctx.auth, 'Content-Type': formType() }),
    body: Buffer.concat([first, rest]),
    chunked,
    expect,
  });
  const out: HostileRequest[] = [
    then('a second content part', form([content()]), problem(400, 'malformed-upload')),
    then('a file part of another name', form([{ name: 'other', filename: 'x.bin', body: 'x' }]), problem(400, 'malformed-upload')),
    then(
      'attestations as a file part',
      form([{ name: 'attestations', filename: 'a.json', type: 'application/json', body: JSON.stringify([a()]) }]),
      problem(400, 'malformed-upload'),
    ),
    then('an unknown field', form([field(':action', 'file_upload')]), problem(400, 'invalid-parameter')),
    then('content as a plain field', form([field('content', 'hello')]), problem(400, 'malformed-upload')),
    then('attestations that are not JSON', form([field('attestations', '[{')]), problem(400, 'invalid-attestations')),
    then('invalid attestation objects', form([field('attestations', [{ ...a(), version: 2 }])]), problem(400, 'invalid-attestations')),
    then('two attestations fields', form([field('attestations', [a()]), field('attestations', [a()])]), problem(400, 'malformed-upload')),
    then(
      'too many parts',
      form([field('attestations', [a()]), { disposition: null, body: 'x' }, { disposition: null, body: 'y' }]),
      problem(400, 'malformed-upload'),
    ),
    then(
      'a malformed part header',
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition form-data name=x\r\n\r\nx\r\n--${BOUNDARY}--\r\n`),
      problem(400, 'malformed-upload'),
    ),
    then('the end of the body', Buffer.alloc(0), problem(400, 'malformed-upload')),
    then('an endless epilogue', form([], { epilogue: 'e'.repeat(1024 * 1024 + 100 * 1024) }), refusedEarly(413, 'payload-too-large'), true),
    // More of the part, past the size: 413 once the meter sees it, 400 if the form's end comes first.
    then('random bytes', randomBytes(ctx.random, int(ctx.random, 1, 2000)), status(400, 413)),
  ];
  // Gone right after the content part's headers (with the first byte of the file, which busboy needs
  // to see the end of the headers), or after the whole tiny part: no answer, nothing kept.
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  for (const [name, sent] of [
    ['the content part headers', Buffer.concat([head, bytes.subarray(0, 1)])],
    ['the whole tiny content part', first],
  ] as const) {
    for (const reset of [false, true]) {
      const body = Buffer.concat([sent, Buffer.alloc(1000, 'x')]);
      const r: HostileRequest = {
        name: `a client gone right after ${name}${reset ? ' (reset)' : ''}`,
        method: 'POST',
        url,
        headers: headers({ Authorization: ctx.auth, 'Content-Type': formType() }),
        body,
      };
      out.push({ ...r, client: { kind: 'cut', bytes: headBytes(r) + sent.length, reset } });
    }
  }
  return out;
};

export const multipart: FrontDoor = { name: MECHANISM, generators: [forms, orderings] };
