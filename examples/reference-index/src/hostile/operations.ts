/**
 * The operator's endpoints (`/healthz`, `/readyz`, `/metrics`; server README "Operating it"):
 * other methods, paths next to theirs, bodies they do not read, and credentials of every shape
 * on `/metrics`. None of them may ever answer 5xx.
 */
import type { HostileRequest } from './exchange.js';
import { HANDLED, headers, problem, randomBytes, type FrontDoor, type HostileGenerator } from './door.js';

const requests: HostileGenerator = async (ctx) => {
  const origin = new URL(ctx.url).origin;
  const any = { status: HANDLED };
  const out: HostileRequest[] = [];
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND']) {
      out.push({
        name: `${method} ${path}`,
        method,
        url: `${origin}${path}`,
        body: Buffer.from('{}'),
        expect: problem(405, 'method-not-allowed'),
      });
    }
    out.push(
      {
        name: `GET ${path} with a 256 KiB body it does not read`,
        method: 'GET',
        url: `${origin}${path}`,
        body: randomBytes(ctx.random, 256 * 1024),
        expect: any,
      },
      { name: `GET ${path}/ (strict routing)`, method: 'GET', url: `${origin}${path}/`, expect: any },
      { name: `GET ${path.toUpperCase()} (case-sensitive routing)`, method: 'GET', url: `${origin}${path.toUpperCase()}`, expect: any },
      { name: `GET ${path} with a 4 KiB query`, method: 'GET', url: `${origin}${path}?${'q=%00&'.repeat(680)}`, expect: any },
      {
        name: `GET ${path} with a garbage Accept`,
        method: 'GET',
        url: `${origin}${path}`,
        headers: headers({ Accept: '*/*;q=x, ;;, \u00ff' }),
        expect: any,
      },
    );
  }
  const metrics = `${origin}/metrics`;
  for (const [what, auth] of [
    ['Bearer without a token', 'Bearer'],
    ['Bearer and a space', 'Bearer '],
    ['a 16 KiB token', `Bearer ${'t'.repeat(16 * 1024)}`],
    ['a token with latin-1 bytes', 'Bearer t\u00ff\u00fe'],
    ['Basic credentials', 'Basic dXNlcjpwYXNz'],
    ['an upload token of this index', ctx.auth],
  ] as const) {
    out.push({ name: `GET /metrics with ${what}`, method: 'GET', url: metrics, headers: headers({ Authorization: auth }), expect: any });
  }
  out.push({
    name: 'GET /metrics with two Authorization headers',
    method: 'GET',
    url: metrics,
    headers: [
      ['Authorization', 'Bearer one'],
      ['Authorization', 'Bearer two'],
    ],
    expect: any,
  });
  for (const path of ['//metrics', '/readyz/../metrics', '/%2e%2e/metrics', '/metrics%00', '/healthz;x']) {
    out.push({ name: `GET ${path}`, method: 'GET', url: `${origin}${path}`, expect: any });
  }
  return out;
};

export const operations: FrontDoor = { name: 'operations (/healthz, /readyz, /metrics)', generators: [requests] };
