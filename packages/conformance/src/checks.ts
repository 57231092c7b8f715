/**
 * The checks, in the order a release walks through a server. Each names the PEP 694 section it
 * holds the server to. A failed step skips the checks that need its result.
 */
import { randomBytes } from 'node:crypto';
import {
  FileUploadSessionResponseSchema,
  HTTP_POST_BYTES,
  PublishingSessionResponseSchema,
  UPLOAD_V2_JSON,
  wheelEscapeName,
} from '@pep694/core';
import { Client, type Response } from './http.js';
import { field, isRecord } from './json.js';
import { makeSdist } from './sdist.js';

export interface ConformanceOptions {
  /** The Upload 2.0 root endpoint. */
  readonly root: string;
  /** A token that may create the test project. */
  readonly token: string;
  /** A token of a principal without permission on the test project (enables the 403 checks). */
  readonly tokenNoPermission?: string;
  /** The published simple index root (enables the index check after publish). */
  readonly simple?: string;
  /** Project name to use; default: a fresh random `pep694-conformance-…` name. */
  readonly project?: string;
  readonly timeoutMs?: number;
}

export interface CheckResult {
  readonly section: string;
  readonly title: string;
  readonly outcome: 'pass' | 'fail' | 'skip';
  readonly detail?: string;
}

class CheckFailed extends Error {}
function must(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}
const brief = (r: Response) => `${r.status} ${r.text.slice(0, 300)}`;
const isProblem = (r: Response) => isRecord(r.json) && (r.json.status === r.status || 'title' in r.json || 'type' in r.json);

export async function runConformance(opts: ConformanceOptions, onResult: (r: CheckResult) => void = () => {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const client = new Client(opts.token, opts.timeoutMs);
  const noperm = opts.tokenNoPermission ? client.withToken(opts.tokenNoPermission) : undefined;
  const anonymous = client.withToken(undefined);
  const root = opts.root;
  const name = opts.project ?? `pep694-conformance-${randomBytes(5).toString('hex')}`;
  const version = '1.0.0';
  const meta = { 'api-version': '2.0' };

  const record = (r: CheckResult) => {
    results.push(r);
    onResult(r);
  };
  /** Runs one check; returns its value, or undefined when it failed or was skipped. */
  async function check<T>(section: string, title: string, fn: () => Promise<T>, needs: unknown[] = []): Promise<T | undefined> {
    if (needs.some((n) => n === undefined)) {
      record({ section, title, outcome: 'skip', detail: 'an earlier step it needs failed' });
      return undefined;
    }
    try {
      const value = await fn();
      record({ section, title, outcome: 'pass' });
      return value;
    } catch (err) {
      record({ section, title, outcome: 'fail', detail: err instanceof CheckFailed ? err.message : `error: ${(err as Error).message}` });
      return undefined;
    }
  }
  const skip = (section: string, title: string, why: string) => record({ section, title, outcome: 'skip', detail: why });

  // ---- errors, auth, content types ----------------------------------------------------------------
  await check('Authentication and Authorization', 'missing credentials get 401 with WWW-Authenticate', async () => {
    const r = await anonymous.request('POST', root, { json: { meta, name, version } });
    must(r.status === 401, `expected 401, got ${brief(r)}`);
    must(r.headers.get('www-authenticate'), 'no WWW-Authenticate header');
    must(isProblem(r), `the 401 body is not an RFC 9457 problem: ${r.text.slice(0, 200)}`);
  });
  await check('Errors', 'errors use the RFC 9457 problem format with meta.api-version', async () => {
    const r = await client.request('POST', root, { json: { meta, name: '-not a name-', version } });
    must(r.status === 400, `expected 400 for an invalid name, got ${brief(r)}`);
    must(isProblem(r), 'not a problem document');
    must(
      r.headers.get('content-type')?.startsWith('application/problem+json'),
      `Content-Type is ${r.headers.get('content-type')} (SHOULD be application/problem+json)`,
    );
    const apiVersion = field(r.json, 'meta', 'api-version');
    must(typeof apiVersion === 'string' && apiVersion.startsWith('2.'), 'no meta.api-version extension member');
  });
  await check('Content Types', 'a request without the v2 content type is refused', async () => {
    const r = await client.request('POST', root, { json: { meta, name, version }, contentType: 'application/json' });
    must(r.status === 415 || r.status === 400, `expected 415, got ${brief(r)}`);
  });
  await check('Content Types', 'meta.api-version major must match the Content-Type major', async () => {
    const r = await client.request('POST', root, { json: { meta: { 'api-version': '3.0' }, name, version } });
    must(r.status >= 400 && r.status < 500, `expected a 4xx, got ${brief(r)}`);
  });

  // ---- publishing session -----------------------------------------------------------------------
  const session = await check('Create a Publishing Session', '201 with Location = links.session and a valid body', async () => {
    const r = await client.request('POST', root, { json: { meta, name, version } });
    must(r.status === 201, `expected 201, got ${brief(r)}`);
    must(r.headers.get('content-type')?.startsWith(UPLOAD_V2_JSON), `Content-Type is ${r.headers.get('content-type')}`);
    const parsed = PublishingSessionResponseSchema.safeParse(r.json);
    must(parsed.success, `body does not match the PEP: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    must(
      r.headers.get('location') === parsed.data.links.session,
      `Location ${r.headers.get('location')} differs from links.session ${parsed.data.links.session}`,
    );
    must(parsed.data.status === 'open', `status is ${parsed.data.status}`);
    return parsed.data;
  });
  await check(
    'Required File Upload Mechanisms',
    `mechanisms include ${HTTP_POST_BYTES}`,
    async () => {
      must(session!.mechanisms.includes(HTTP_POST_BYTES), `mechanisms are ${session!.mechanisms.join(', ')}`);
    },
    [session],
  );
  await check(
    'Publishing Session Token',
    'session-token and links.stage appear together or not at all',
    async () => {
      must(
        (session!['session-token'] === undefined) === (session!.links.stage === undefined),
        'only one of session-token and links.stage is present',
      );
    },
    [session],
  );
  await check(
    'Multiple Session Creation Requests',
    'a second create answers 409 with Location of the live session',
    async () => {
      const r = await client.request('POST', root, { json: { meta, name, version } });
      must(r.status === 409, `expected 409, got ${brief(r)}`);
      must(r.headers.get('location') === session!.links.session, `Location is ${r.headers.get('location')}`);
    },
    [session],
  );
  if (noperm) {
    await check(
      'Multiple Session Creation Requests',
      'a principal without permission gets 403, which takes precedence over 409',
      async () => {
        const r = await noperm.request('POST', root, { json: { meta, name, version } });
        must(r.status === 403, `expected 403, got ${brief(r)}`);
        must(!r.headers.get('location'), 'the 403 discloses the live session in Location');
      },
      [session],
    );
    await check(
      'Authentication and Authorization',
      'session endpoints refuse a principal without permission with 403',
      async () => {
        const r = await noperm.request('GET', session!.links.session);
        must(r.status === 403, `expected 403, got ${brief(r)}`);
      },
      [session],
    );
  } else {
    skip('Authentication and Authorization', '403 checks', 'no --token-noperm given');
  }
  await check(
    'Publishing Session Status',
    'GET links.session returns the session',
    async () => {
      const r = await client.request('GET', session!.links.session);
      must(r.status === 200, `expected 200, got ${brief(r)}`);
      const parsed = PublishingSessionResponseSchema.safeParse(r.json);
      must(parsed.success, 'body does not match the PEP');
      must(parsed.data.links.session === session!.links.session, 'links changed');
    },
    [session],
  );
  if (session?.links.extend) {
    await check('Publishing Session Extension', 'extend answers 200 and never moves expires-at earlier', async () => {
      const r = await client.request('POST', session.links.extend!, { json: { meta, 'extend-for': 60 } });
      must(r.status === 200, `expected 200, got ${brief(r)}`);
      const expiresAt = field(r.json, 'expires-at');
      must(
        typeof expiresAt === 'string' && Date.parse(expiresAt) >= Date.parse(session['expires-at']),
        `expires-at moved from ${session['expires-at']} to ${String(expiresAt)}`,
      );
    });
  } else if (session) skip('Publishing Session Extension', 'extend', 'the server offers no links.extend');

  // ---- file upload session ------------------------------------------------------------------------
  const sdist = await makeSdist(name, version);
  const fileRequest = {
    meta,
    filename: sdist.filename,
    size: sdist.bytes.length,
    hashes: { sha256: sdist.sha256 },
    mechanism: HTTP_POST_BYTES,
  };
  await check(
    'Create a File Upload Session',
    'an invalid file name gets 400',
    async () => {
      const r = await client.request('POST', session!.links.upload, { json: { ...fileRequest, filename: 'not-a-distribution.txt' } });
      must(r.status === 400, `expected 400, got ${brief(r)}`);
    },
    [session],
  );
  await check(
    'Create a File Upload Session',
    'an unsupported mechanism MUST get 422',
    async () => {
      const r = await client.request('POST', session!.links.upload, { json: { ...fileRequest, mechanism: 'vnd-conformance-nonexistent' } });
      must(r.status === 422, `expected 422, got ${brief(r)}`);
    },
    [session],
  );
  const file = await check(
    'Create a File Upload Session',
    '202 with Retry-After and the mechanism map',
    async () => {
      const r = await client.request('POST', session!.links.upload, { json: fileRequest });
      must(r.status === 202, `expected 202, got ${brief(r)}`);
      must(r.headers.get('retry-after') !== null, 'no Retry-After header (MUST be present)');
      const parsed = FileUploadSessionResponseSchema.safeParse(r.json);
      must(
        parsed.success,
        `body does not match the PEP: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
      must(parsed.data.mechanism.identifier === HTTP_POST_BYTES, `mechanism.identifier is ${parsed.data.mechanism.identifier}`);
      must(typeof parsed.data.mechanism.file_url === 'string', 'no mechanism.file_url');
      return parsed.data;
    },
    [session],
  );
  await check(
    'Publishing Session Files',
    'the file appears in the session files mapping',
    async () => {
      const r = await client.request('GET', session!.links.session);
      const entry = field(r.json, 'files', sdist.filename);
      must(entry, `files has no ${sdist.filename}`);
      const status = field(entry, 'status');
      must(status === 'pending' || status === 'processing', `status is ${String(status)}`);
    },
    [file],
  );
  await check(
    'Complete a Publishing Session',
    'publish with a file not completed is refused with 409',
    async () => {
      const r = await client.request('POST', session!.links.publish, { json: { meta } });
      must(r.status === 409, `expected 409, got ${brief(r)}`);
      const again = await client.request('GET', session!.links.session);
      const status = field(again.json, 'status');
      must(status === 'open', `the session is ${String(status)} after a refused publish`);
    },
    [file],
  );
  const sent = await check(
    'Required File Upload Mechanisms',
    'http-post-bytes: POST file_url with the bytes',
    async () => {
      const r = await client.request('POST', String(file!.mechanism.file_url), {
        body: sdist.bytes,
        contentType: 'application/octet-stream',
      });
      must(r.status >= 200 && r.status < 300, `expected 2xx, got ${brief(r)}`);
      return true;
    },
    [file],
  );
  const completed = await check(
    'Complete a File Upload Session',
    '201, or 202 then completed when polled',
    async () => {
      const r = await client.request('POST', file!.links.complete, { json: { meta } });
      must(r.status === 201 || r.status === 202, `expected 201 or 202, got ${brief(r)}`);
      if (r.status === 202) {
        const polled = await client.poll(file!.links['file-upload-session'], (b) => field(b, 'status') !== 'processing');
        const status = field(polled.json, 'status');
        must(status === 'completed', `ended as ${String(status ?? polled.status)}`);
      } else {
        const status = field(r.json, 'status');
        must(status === 'completed', `status is ${String(status)}`);
      }
      return true;
    },
    [sent],
  );
  await check(
    'File Upload Session Status',
    'GET links.file-upload-session reports completed',
    async () => {
      const r = await client.request('GET', file!.links['file-upload-session']);
      must(r.status === 200 && field(r.json, 'status') === 'completed', `got ${brief(r)}`);
    },
    [completed],
  );
  await check(
    'Cancellation and Deletion',
    'DELETE a pending file answers 204 and removes it from files',
    async () => {
      const wheel = `${wheelEscapeName(name)}-${version}-py3-none-any.whl`;
      const created = await client.request('POST', session!.links.upload, { json: { ...fileRequest, filename: wheel } });
      must(created.status === 202, `creating a second file session: ${brief(created)}`);
      const fileSession = field(created.json, 'links', 'file-upload-session');
      must(typeof fileSession === 'string', `no links.file-upload-session: ${brief(created)}`);
      const del = await client.request('DELETE', fileSession);
      must(del.status === 204, `expected 204, got ${brief(del)}`);
      const status = await client.request('GET', fileSession);
      must(status.status === 404 || field(status.json, 'status') === 'canceled', `its status URL reports ${brief(status)}`);
      const s = await client.request('GET', session!.links.session);
      must(field(s.json, 'files', wheel) === undefined, 'the deleted file is still in files');
    },
    [session],
  );

  // ---- publish ------------------------------------------------------------------------------------
  const published = await check(
    'Complete a Publishing Session',
    'publish answers 201 or 202 with Location, then published',
    async () => {
      const r = await client.request('POST', session!.links.publish, { json: { meta } });
      must(r.status === 201 || r.status === 202, `expected 201 or 202, got ${brief(r)}`);
      must(r.headers.get('location') === session!.links.session, `Location is ${r.headers.get('location')}`);
      const final =
        r.status === 202 ? (await client.poll(session!.links.session, (b) => field(b, 'status') !== 'processing')).json : r.json;
      const status = field(final, 'status');
      must(status === 'published', `ended as ${String(status)}`);
      return true;
    },
    [completed],
  );
  if (opts.simple && published) {
    await check('Staged Previews / simple index', 'the published file is listed in the simple index', async () => {
      const url = `${opts.simple!.replace(/\/?$/, '/')}${name}/`;
      const r = await client.request('GET', url, { headers: { accept: 'text/html' } });
      must(r.status === 200, `GET ${url}: ${r.status}`);
      must(r.text.includes(sdist.filename), `${sdist.filename} is not listed`);
    });
  }
  const second = await check(
    'Multiple Session Creation Requests',
    'after publish a new session is created with new links',
    async () => {
      const r = await client.request('POST', root, { json: { meta, name, version } });
      must(r.status === 201, `expected 201, got ${brief(r)}`);
      const links = field(r.json, 'links');
      must(
        isRecord(links) && typeof links.session === 'string' && typeof links.upload === 'string',
        `no links.session and links.upload: ${brief(r)}`,
      );
      must(links.session !== session!.links.session, 'the new session has the same status URL');
      return { links: { session: links.session, upload: links.upload } };
    },
    [published],
  );
  await check(
    'Create a File Upload Session',
    'a file name already published in the release gets 409',
    async () => {
      const r = await client.request('POST', second!.links.upload, { json: fileRequest });
      must(r.status === 409, `expected 409, got ${brief(r)}`);
    },
    [second],
  );
  await check(
    'Publishing Session Cancellation',
    'DELETE cancels; the status URL reports canceled or is gone (404)',
    async () => {
      const r = await client.request('DELETE', second!.links.session);
      must(r.status >= 200 && r.status < 300, `expected 2xx, got ${brief(r)}`);
      const s = await client.request('GET', second!.links.session);
      // PEP "Session Status Retention": a 404 on a terminal session is not an error.
      must(s.status === 404 || field(s.json, 'status') === 'canceled', `status reports ${brief(s)}`);
    },
    [second],
  );
  return results;
}
