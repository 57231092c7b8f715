/**
 * The legacy upload API at /legacy/ (issue #16): twine's form with each thing a client can get
 * wrong (the action, the release fields, digests, parts, limits, framing, types, credentials),
 * hostile file names in the `content` part, clients gone mid-file, and `100 Continue`. Every
 * request asks for problem+json (`Accept`), so the suite can read the code; twine gets the same
 * answer as text with the message in the reason phrase. Nothing of this is ever published: the
 * bytes are random, and the reference index's distribution validator refuses them last.
 */
import { createHash } from 'node:crypto';
import { attestation } from '@pep694/server/testing';
import { headBytes, type HostileRequest } from './exchange.js';
import { brokenChunks } from './framing.js';
import { headers, problem, randomBytes, refusedEarly, sha256, status, type FrontDoor, type HostileGenerator } from './door.js';

const BOUNDARY = 'legacy-boundary-9f2c';
const PROJECT = 'hostile-legacy';
const FILENAME = 'hostile_legacy-1.0-py3-none-any.whl';

type Field = readonly [name: string, value: string];
interface FilePart {
  readonly name?: string;
  /** Sent as written, quotes and all (`null`: no filename parameter). */
  readonly filename?: string | null;
  readonly headers?: readonly string[];
  readonly body: Uint8Array;
}

/** A multipart/form-data body: the fields, then the file parts, as twine orders them. */
function form(fields: readonly Field[], files: readonly FilePart[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const [name, value] of fields) {
    out.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const f of files) {
    const filename = f.filename === null ? '' : `; filename="${f.filename ?? FILENAME}"`;
    const lines = [
      `--${BOUNDARY}`,
      `Content-Disposition: form-data; name="${f.name ?? 'content'}"${filename}`,
      'Content-Type: application/octet-stream',
      ...(f.headers ?? []),
    ];
    out.push(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), Buffer.from(f.body), Buffer.from('\r\n'));
  }
  if (opts.end !== false) out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}
const FORM_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

/** twine's fields for `bytes` (name and version of the hostile project), with `over` replacing or (undefined) dropping some. */
function twineFields(bytes: Uint8Array, over: Record<string, string | undefined> = {}, filename = FILENAME): Field[] {
  const all: Record<string, string | undefined> = {
    ':action': 'file_upload',
    protocol_version: '1',
    metadata_version: '2.1',
    name: PROJECT,
    version: '1.0',
    filetype: filename.endsWith('.whl') ? 'bdist_wheel' : 'sdist',
    pyversion: 'py3',
    md5_digest: createHash('md5').update(bytes).digest('hex'),
    sha256_digest: sha256(bytes),
    blake2_256_digest: '0'.repeat(64),
    summary: 'hostile',
    ...over,
  };
  return Object.entries(all).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as Field]));
}

/** Twine's form, with each thing a client can get wrong. */
const forms: HostileGenerator = async (ctx) => {
  const url = new URL('../legacy/', ctx.url).href;
  const token = ctx.auth.replace(/^Bearer /, '');
  const basic = (t: string) => `Basic ${Buffer.from(`__token__:${t}`).toString('base64')}`;
  const bytes = randomBytes(ctx.random, 64 * 1024);
  // `null` leaves a header out (an `undefined` argument would take the default).
  const h = (type: string | null = FORM_TYPE, auth: string | null = basic(token), extra: Record<string, string> = {}) =>
    headers({ Authorization: auth ?? undefined, 'Content-Type': type ?? undefined, Accept: 'application/problem+json', ...extra });
  const post = (name: string, body: Buffer, expect: HostileRequest['expect'], more: Partial<HostileRequest> = {}): HostileRequest => ({
    name,
    method: 'POST',
    url,
    headers: h(),
    body,
    expect,
    ...more,
  });
  const twine = (over: Record<string, string | undefined> = {}, files: readonly FilePart[] = [{ body: bytes }]) =>
    form(twineFields(bytes, over), files);
  const a = () => JSON.stringify([attestation(FILENAME, sha256(bytes))]);
  return [
    // The action and the release fields.
    post('no :action', twine({ ':action': undefined }), problem(400, 'invalid-parameter')),
    post(':action=submit', twine({ ':action': 'submit' }), problem(400, 'invalid-parameter')),
    post('protocol_version 2', twine({ protocol_version: '2' }), problem(400, 'invalid-parameter')),
    post('no name', twine({ name: undefined }), problem(400, 'invalid-parameter')),
    post('an invalid name', twine({ name: '-not valid-' }), problem(400, 'invalid-parameter')),
    post('no version', twine({ version: undefined }), problem(400, 'invalid-parameter')),
    post('an invalid version', twine({ version: 'one point oh' }), problem(400, 'invalid-parameter')),
    post('another version than the file name', twine({ version: '2.0' }), status(400)),
    post('another project than the file name', twine({ name: 'someone-else' }), status(400)),
    post('no filetype', twine({ filetype: undefined }), problem(400, 'invalid-parameter')),
    post('filetype bdist_egg', twine({ filetype: 'bdist_egg' }), problem(400, 'invalid-parameter')),
    post('filetype sdist for a wheel', twine({ filetype: 'sdist' }), problem(400, 'invalid-parameter')),
    post('the name twice', form([...twineFields(bytes), ['name', PROJECT]], [{ body: bytes }]), problem(400, 'invalid-parameter')),
    // Digests.
    post('no digest', twine({ md5_digest: undefined, sha256_digest: undefined }), problem(400, 'invalid-parameter')),
    post('a sha256 digest that is not hex', twine({ sha256_digest: 'z'.repeat(64) }), problem(400, 'invalid-parameter')),
    post('a short sha256 digest', twine({ sha256_digest: 'ab' }), problem(400, 'invalid-parameter')),
    post('a sha256 digest of other bytes', twine({ sha256_digest: sha256(Buffer.from('other')) }), problem(422, 'hash-mismatch')),
    post(
      'an md5 digest alone, of other bytes',
      twine({ sha256_digest: undefined, md5_digest: createHash('md5').update('x').digest('hex') }),
      problem(422, 'hash-mismatch'),
    ),
    // Parts.
    post('no content part', twine({}, []), problem(400, 'malformed-upload')),
    post('content as a plain field', form([...twineFields(bytes), ['content', 'hello']], []), problem(400, 'malformed-upload')),
    post('two content parts', twine({}, [{ body: bytes }, { body: bytes }]), status(400)),
    post('an unknown file part', twine({}, [{ name: 'file', body: bytes }]), problem(400, 'invalid-parameter')),
    post('a content part without a filename', twine({}, [{ body: bytes, filename: null }]), status(400)),
    post(
      'a base64 content part',
      twine({}, [{ body: Buffer.from(Buffer.from(bytes).toString('base64')), headers: ['Content-Transfer-Encoding: base64'] }]),
      problem(415, 'unsupported-media-type'),
    ),
    post(
      'a gpg_signature part and random bytes: the validator refuses them',
      twine({}, [{ body: bytes }, { name: 'gpg_signature', filename: 'x.asc', body: Buffer.from('sig') }]),
      problem(422, 'invalid-artifact'),
    ),
    post('random bytes with their right digests: the validator refuses them', twine(), problem(422, 'invalid-artifact')),
    post('attestations that are not JSON', twine({ attestations: '[{' }), problem(400, 'invalid-attestations')),
    post(
      'attestations of another file',
      twine({ attestations: JSON.stringify([attestation('other-1.0.tar.gz', sha256(bytes))]) }),
      problem(400, 'invalid-attestations'),
    ),
    post(
      'attestations twice',
      form([...twineFields(bytes), ['attestations', a()], ['attestations', a()]], [{ body: bytes }]),
      problem(400, 'invalid-attestations'),
    ),
    // Limits.
    post(
      '1001 fields',
      form([...twineFields(bytes), ...Array.from({ length: 1001 }, (_, i) => [`classifiers`, `C :: ${i}`] as Field)], [{ body: bytes }]),
      problem(413, 'body-too-large'),
    ),
    post('a Content-Length of 64 GiB', twine(), refusedEarly(413, 'payload-too-large'), { contentLength: 64 * 1024 ** 3 }),
    post(
      'a description over the field limit',
      twine({ description: 'd'.repeat(4 * 1024 * 1024 + 10) }),
      refusedEarly(413, 'body-too-large'),
    ),
    // Framing and types.
    post('no closing delimiter', form(twineFields(bytes), [{ body: bytes }], { end: false }), problem(400, 'malformed-upload')),
    post('a body cut inside the file', twine().subarray(0, 40_000), problem(400, 'malformed-upload')),
    post('garbage instead of a form', randomBytes(ctx.random, 70_000), problem(400, 'malformed-upload')),
    post('chunked garbage', randomBytes(ctx.random, 70_000), problem(400, 'malformed-upload'), { chunked: true }),
    post('no Content-Type', twine(), problem(415, 'unsupported-media-type'), { headers: h(null) }),
    post('x-www-form-urlencoded', Buffer.from(':action=file_upload'), problem(415, 'unsupported-media-type'), {
      headers: h('application/x-www-form-urlencoded'),
    }),
    post('multipart without a boundary', twine(), problem(415, 'unsupported-media-type'), { headers: h('multipart/form-data') }),
    // Credentials.
    post('no credentials', twine(), problem(401, 'unauthenticated'), { headers: h(FORM_TYPE, null) }),
    post('a wrong token', twine(), problem(403, 'forbidden'), { headers: h(FORM_TYPE, basic('not-a-token')) }),
    post('a token without permission', twine(), problem(403, 'forbidden'), { headers: h(FORM_TYPE, ctx.noPermission) }),
    post('a Basic header that is not base64', twine(), problem(403, 'forbidden'), { headers: h(FORM_TYPE, 'Basic !!!') }),
    post('no credentials, waiting for 100 Continue', twine(), problem(401, 'unauthenticated'), {
      headers: h(FORM_TYPE, null),
      client: { kind: 'expect-continue' },
    }),
    { name: 'GET /legacy/', method: 'GET', url, headers: h(), expect: problem(405, 'method-not-allowed') },
    ...brokenChunks('POST /legacy/', url, h(), twine()),
  ];
};

/** Hostile file names in the `content` part: each refused with a 4xx, none stored. */
const filenames: HostileGenerator = async (ctx) => {
  const url = new URL('../legacy/', ctx.url).href;
  const auth = `Basic ${Buffer.from(`__token__:${ctx.auth.replace(/^Bearer /, '')}`).toString('base64')}`;
  const bytes = randomBytes(ctx.random, 4096);
  const names = [
    '../../../../etc/passwd',
    '../hostile_legacy-1.0-py3-none-any.whl',
    'hostile_legacy-1.0-py3-none-any.whl/../../x',
    '/abs/hostile_legacy-1.0.tar.gz',
    'C:\\\\hostile_legacy-1.0.tar.gz',
    'hostile_legacy-1.0.tar.gz%00.exe',
    'hostile_legacy-1.0.exe',
    'Hostile_Legacy-1.0.tar.gz',
    'hostile-legacy-1.0.tar.gz',
    'hostile_legacy-01.0.tar.gz',
    'hostile_legacy-1.0-py3-none-any.whl.metadata',
    'hostile_legacy-1.0-py3-none.whl',
    'hostile_legacy-1.0-PY3-none-any.whl',
    'other-1.0.tar.gz',
    `hostile_legacy-1.0-${'x'.repeat(300)}-none-any.whl`,
    'hostile_legacy-1.0.tar.gz\r\nX-Injected: 1',
    'hostile_légacy-1.0.tar.gz',
    'hostile_legacy-1.0.tar.gz ',
    '.',
    '',
    '%2e%2e%2fhostile_legacy-1.0.tar.gz',
  ];
  return names.map((filename) => {
    const fields = twineFields(bytes, {}, filename);
    return {
      name: `the file name ${JSON.stringify(filename.slice(0, 60))}`,
      method: 'POST',
      url,
      headers: headers({ Authorization: auth, 'Content-Type': FORM_TYPE, Accept: 'application/problem+json' }),
      body: form(fields, [{ body: bytes, filename }]),
      expect: status(400, 415),
    } satisfies HostileRequest;
  });
};

/** Clients gone (closed or reset) before the fields end, mid-file and right before the closing delimiter: no answer, nothing kept. */
const cuts: HostileGenerator = async (ctx) => {
  const url = new URL('../legacy/', ctx.url).href;
  const auth = `Basic ${Buffer.from(`__token__:${ctx.auth.replace(/^Bearer /, '')}`).toString('base64')}`;
  const bytes = randomBytes(ctx.random, 256 * 1024);
  const body = form(twineFields(bytes), [{ body: bytes }]);
  const r: HostileRequest = {
    name: 'a legacy upload',
    method: 'POST',
    url,
    headers: headers({ Authorization: auth, 'Content-Type': FORM_TYPE, Accept: 'application/problem+json' }),
    body,
  };
  const out: HostileRequest[] = [];
  for (const [where, at] of [
    ['in the fields', 200],
    ['mid-file', Math.floor(body.length / 2)],
    ['right before the closing delimiter', body.length - 10],
  ] as const) {
    for (const reset of [false, true]) {
      out.push({
        ...r,
        name: `a client gone ${where}${reset ? ' (reset)' : ''}`,
        client: { kind: 'cut', bytes: headBytes(r) + at, reset },
      });
    }
  }
  return out;
};

export const legacy: FrontDoor = { name: 'legacy /legacy/', generators: [forms, filenames, cuts] };
