/**
 * A legacy upload (`POST /legacy/`) as twine sends it, for tests that need many of them or a form
 * twine would never send: the fields before the file part, `__token__` Basic credentials.
 */
import { createHash } from 'node:crypto';

export interface LegacyUploadRequest {
  /** The API token (sent as Basic `__token__:<token>`); omitted: no Authorization header. */
  readonly token?: string;
  readonly filename: string;
  readonly bytes: Uint8Array;
  /** Fields sent before the file, over the defaults twine would send for `filename`; `undefined` drops one. */
  readonly fields?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly signal?: AbortSignal;
}

export interface LegacyUploadResponse {
  readonly status: number;
  /** The reason phrase twine prints (`response.reason`). */
  readonly reason: string;
  readonly text: string;
}

/** The fields twine 4 sends for a file, enough for the index: name and version from the file name. */
export function twineFields(filename: string, bytes: Uint8Array): Record<string, string> {
  const wheel = filename.endsWith('.whl');
  const [name, version] = filename.replace(/\.tar\.gz$|\.whl$/, '').split('-');
  return {
    ':action': 'file_upload',
    protocol_version: '1',
    metadata_version: '2.1',
    name: name!,
    version: version!,
    filetype: wheel ? 'bdist_wheel' : 'sdist',
    pyversion: wheel ? 'py3' : 'source',
    md5_digest: createHash('md5').update(bytes).digest('hex'),
    sha256_digest: createHash('sha256').update(bytes).digest('hex'),
    summary: 'A test upload',
  };
}

/** POSTs one legacy upload; resolves with the status, the reason phrase and the body text. */
export async function legacyUpload(url: string, req: LegacyUploadRequest): Promise<LegacyUploadResponse> {
  const { request } = await import('node:http');
  const form = new FormData();
  const fields = { ...twineFields(req.filename, req.bytes), ...req.fields };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    for (const one of typeof v === 'string' ? [v] : v) form.append(k, one);
  }
  form.append('content', new Blob([req.bytes]), req.filename);
  // Serialized through Response, so that the request is a plain node:http one with its reason phrase readable.
  const encoded = new Response(form);
  const body = Buffer.from(await encoded.arrayBuffer());
  const headers: Record<string, string> = {
    'content-type': encoded.headers.get('content-type')!,
    'content-length': String(body.length),
  };
  if (req.token !== undefined) headers.authorization = `Basic ${Buffer.from(`__token__:${req.token}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const r = request(url, { method: 'POST', headers, ...(req.signal ? { signal: req.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}
