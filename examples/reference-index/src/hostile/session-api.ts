/**
 * The session API (PEP 694 JSON endpoints): the bodies of packages/server's fuzz test (schema-shaped
 * values of the wrong types, arbitrary JSON, bytes), bad credentials, content types and lengths, a
 * client waiting for `100 Continue`, traversal in path segments, methods, and bodies cut off.
 */
import fc from 'fast-check';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { DEEPLY_NESTED_JSON, HOSTILE_API_PATHS, MALFORMED_JSON_BODIES } from '@pep694/server/testing';
import { schemaShapedBody } from '@pep694/server/testing/arbitraries';
import { headBytes, type HostileRequest } from './exchange.js';
import { HANDLED, headers, int, JSON_META, problem, status, type FrontDoor, type HostileGenerator } from './door.js';

/** The session API's POST endpoints of a session with one pending file, with a body each would take. */
async function endpoints(ctx: Parameters<HostileGenerator>[0], project: string) {
  const s = await ctx.session(project);
  const f = await ctx.file(s, `${project.replace(/-/g, '_')}-1.0.tar.gz`, Buffer.from('hostile'), 'http-post-bytes');
  return {
    session: s,
    file: f,
    posts: [
      { name: 'create session', url: ctx.url, body: { ...JSON_META, name: `${project}-x`, version: '1.0' } },
      {
        name: 'create file',
        url: s.links['upload']!,
        body: {
          ...JSON_META,
          filename: `${project.replace(/-/g, '_')}-1.0-py3-none-any.whl`,
          size: 1,
          hashes: { sha256: '0'.repeat(64) },
          mechanism: 'http-post-bytes',
        },
      },
      { name: 'extend session', url: s.links['extend']!, body: { ...JSON_META, 'extend-for': 60 } },
      { name: 'complete file', url: f.links['complete']!, body: JSON_META },
      { name: 'extend file', url: f.links['extend']!, body: { ...JSON_META, 'extend-for': 60 } },
      { name: 'publish', url: s.links['publish']!, body: JSON_META },
    ],
  };
}

const json = (auth: string | undefined, extra: Record<string, string | undefined> = {}) =>
  headers({ Authorization: auth, 'Content-Type': UPLOAD_V2_JSON, ...extra });

/** Fuzzed bodies (seeded samples of the fuzz test's arbitraries, from `@pep694/server/testing`), each to one of the endpoints. */
const fuzzed: HostileGenerator = async (ctx) => {
  const { posts } = await endpoints(ctx, 'hostile-fuzz');
  const bodies: (string | Uint8Array)[] = [
    ...fc.sample(schemaShapedBody, { seed: ctx.seed, numRuns: 30 }).map((b) => JSON.stringify(b)),
    ...fc.sample(fc.jsonValue({ maxDepth: 8 }), { seed: ctx.seed + 1, numRuns: 15 }).map((v) => JSON.stringify(v)),
    ...fc.sample(fc.uint8Array({ maxLength: 200 }), { seed: ctx.seed + 2, numRuns: 15 }),
    ...MALFORMED_JSON_BODIES,
    DEEPLY_NESTED_JSON,
  ];
  return bodies.map((body, i) => {
    const target = posts[int(ctx.random, 0, posts.length - 1)]!;
    return {
      name: `fuzzed body #${i} to ${target.name}`,
      method: 'POST',
      url: target.url,
      headers: json(ctx.auth),
      body: Buffer.from(body),
      expect: status(...HANDLED),
    };
  });
};

/** Credentials, content types, lengths and `Expect: 100-continue` that every endpoint refuses. */
const refused: HostileGenerator = async (ctx) => {
  const { posts } = await endpoints(ctx, 'hostile-api');
  const out: HostileRequest[] = [];
  for (const p of posts) {
    const body = Buffer.from(JSON.stringify(p.body));
    const req = (name: string, h: [string, string][], more: Partial<HostileRequest> = {}): HostileRequest => ({
      name: `${p.name}: ${name}`,
      method: 'POST',
      url: p.url,
      headers: h,
      body,
      ...more,
    });
    out.push(
      req('no credentials', json(undefined), { expect: problem(401, 'unauthenticated') }),
      req('an empty Bearer token', json('Bearer '), { expect: problem(401, 'unauthenticated') }),
      req('an unknown token', json('Bearer not-a-token'), { expect: problem(401, 'unauthenticated') }),
      req('a 10 000-character token', json(`Bearer ${'t'.repeat(10_000)}`), { expect: problem(401, 'unauthenticated') }),
      req('Basic that is not base64', json('Basic !!!***'), { expect: problem(401, 'unauthenticated') }),
      req('Basic without a colon', json(`Basic ${Buffer.from('__token__').toString('base64')}`), {
        expect: problem(401, 'unauthenticated'),
      }),
      req('an unknown scheme', json('Digest username="x"'), { expect: problem(401, 'unauthenticated') }),
      req('no permission on the project', json(ctx.noPermission), { expect: problem(403, 'forbidden') }),
      req('no credentials, waiting for 100 Continue', json(undefined), {
        client: { kind: 'expect-continue' },
        expect: problem(401, 'unauthenticated'),
      }),
      req('a text/plain body', json(ctx.auth, { 'Content-Type': 'text/plain' }), { expect: status(415) }),
      req('an API version the server does not speak', json(ctx.auth, { 'Content-Type': 'application/vnd.pypi.upload.v3+json' }), {
        expect: status(400, 415),
      }),
      req('no Content-Type', headers({ Authorization: ctx.auth }), { expect: status(400, 415) }),
      req('a gzip content coding', json(ctx.auth, { 'Content-Encoding': 'gzip' }), { expect: status(...HANDLED) }),
      req('an Accept it cannot meet', json(ctx.auth, { Accept: 'text/html' }), { expect: status(406) }),
      req('a Content-Length of 1 GB over a short body', json(ctx.auth), { contentLength: 1e9, expect: problem(413, 'body-too-large') }),
      req('a chunked body over maxJsonBody', json(ctx.auth), {
        body: Buffer.from(JSON.stringify({ ...p.body, pad: 'x'.repeat(100 * 1024) })),
        chunked: true,
        expect: problem(413, 'body-too-large'),
      }),
      req('a body cut off half-way', json(ctx.auth), { client: { kind: 'cut', bytes: 0 } }),
      req('a body reset half-way', json(ctx.auth), { client: { kind: 'cut', bytes: 0, reset: true } }),
    );
    if (p.name !== 'create session') {
      // The project of a new session is in its body: only other requests are refused before it is read.
      out.push(
        req('no permission, waiting for 100 Continue', json(ctx.noPermission), {
          client: { kind: 'expect-continue' },
          expect: problem(403, 'forbidden'),
        }),
      );
    }
  }
  // The cuts land inside the body: after the head, before its end.
  return out.map((r) =>
    r.client?.kind === 'cut' ? { ...r, client: { ...r.client, bytes: headBytes(r) + Math.floor((r.body?.length ?? 0) / 2) } } : r,
  );
};

/** Traversal and odd characters in path segments (404), and methods no endpoint takes (405). */
const paths: HostileGenerator = async (ctx) => {
  const out: HostileRequest[] = [];
  for (const path of HOSTILE_API_PATHS) {
    out.push({
      name: `GET ${path.slice(0, 60)}`,
      method: 'GET',
      url: `${ctx.url}${path}`,
      headers: headers({ Authorization: ctx.auth }),
      expect: status(400, 404, 405),
    });
  }
  const { session, file } = await endpoints(ctx, 'hostile-paths');
  for (const url of [ctx.url, session.links['session']!, file.links['file-upload-session']!, session.links['publish']!]) {
    for (const method of ['PUT', 'PATCH', 'TRACE', 'OPTIONS']) {
      out.push({
        name: `${method} ${new URL(url).pathname}`,
        method,
        url,
        headers: json(ctx.auth),
        body: Buffer.from('{}'),
        expect: status(404, 405),
      });
    }
  }
  return out;
};

export const sessionApi: FrontDoor = { name: 'session API', generators: [fuzzed, refused, paths] };
