/**
 * Process-level survival (issue #21): the real reference index (dist/main.js, as `pnpm start` runs
 * it: SQLite, filesystem blobs, http-post-bytes, multipart, tus and resumable, the distribution validator) in
 * a child process (in the pg-s3 project on PostgreSQL and S3 instead, through crash/backends.ts), and every malformed request of hostile/ thrown at each of its front doors: the
 * session API fuzz bodies, the refusals of each mechanism's tests, the multipart part orderings,
 * clients cut off or reset mid-request, broken HTTP framing. Each must get the right 4xx problem
 * (or, for a client that went away, nothing), never a 5xx, a hang or a stack trace. Then the *same*
 * process (same pid, never restarted) must take a full upload with each mechanism and publish it
 * (and one through /legacy/), must have printed no uncaught exception and logged no error, and must have left no partial
 * staging write behind.
 *
 * Seeded (PEP694_HOSTILE_SEED, default 694: the fuzz samples, random bytes, cut points and the
 * order of each generator's requests) and bounded: about 400 requests, a few seconds, the
 * generators (each with its own targets) in parallel. To add a front door: see hostile/door.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
import { uploadMultipart } from '@pep694/mechanism-multipart/client';
import { uploadTus } from '@pep694/mechanism-tus/client';
import { uploadResumable } from '@pep694/mechanism-resumable/client';
import { sharedTestS3 } from '@pep694/blobs-s3/testing';
import { legacyUpload, META, tally } from '@pep694/server/testing';
import type { DoorContext, FileTarget, FrontDoor } from './hostile/door.js';
import { exchange, judge, type HostileRequest } from './hostile/exchange.js';
import { attestationEnvironment } from './hostile/attestations.js';
import { FRONT_DOORS } from './hostile/front-doors.js';
import { backendsFor, releaseBackends } from './crash/backends.js';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
const FIXTURES = new URL('../../../../shared/fixtures/dist/', import.meta.url);
const SEED = Number(process.env['PEP694_HOSTILE_SEED'] ?? 694);
const ALICE = 'hostile-alice-token-0123456789';
const CAROL = 'hostile-carol-token-0123456789';
const AUTH = `Bearer ${ALICE}`;

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
/** A stream of the run's seed for `name`, so that doors and generators do not shift each other's draws. */
const seeded = (name: string) => rng(createHash('sha256').update(`${SEED}:${name}`).digest().readInt32LE(0));

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

let dir: string;
let child: ChildProcess;
let url: string;
let stdout = '';
let stderr = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pep694-hostile-'));
  const tokens = join(dir, 'tokens.json');
  writeFileSync(
    tokens,
    JSON.stringify({
      tokens: [
        { token: ALICE, principal: 'alice', projects: ['*'] },
        { token: CAROL, principal: 'carol', projects: [] },
      ],
    }),
  );
  // A Sigstore trust root made for the run and trusted publishers beside the tokens file, so that
  // fuzzed attestations reach every check of the verifier (see hostile/attestations.ts).
  const attestationEnv = await attestationEnvironment(dir);
  child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      ...(await backendsFor(join(dir, 'data'))).env,
      PEP694_PORT: '0',
      PEP694_DATA: join(dir, 'data'),
      PEP694_TOKENS_FILE: tokens,
      PEP694_LOG_LEVEL: 'error',
      ...attestationEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /Upload 2\.0 root:\s+(\S+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code, signal) => reject(new Error(`the reference index exited (${code ?? signal}): ${stdout}${stderr}`)));
  });
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await releaseBackends();
  rmSync(dir, { recursive: true, force: true });
});

async function api(method: string, target: string, body: unknown, expected: number, auth = AUTH): Promise<any> {
  const res = await fetch(target, {
    method,
    headers: { Authorization: auth, 'Content-Type': UPLOAD_V2_JSON },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`${method} ${target}: ${res.status}, expected ${expected}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : undefined;
}

function context(name: string): DoorContext {
  return {
    url,
    auth: AUTH,
    noPermission: `Bearer ${CAROL}`,
    seed: SEED,
    random: seeded(name),
    api,
    session: (project) => api('POST', url, { meta: META, name: project, version: '1.0' }, 201),
    async file(session, filename, bytes, mechanism): Promise<FileTarget> {
      const hashes = { sha256: createHash('sha256').update(bytes).digest('hex') };
      const body = await api('POST', session.links['upload']!, { meta: META, filename, size: bytes.length, hashes, mechanism }, 202);
      return { links: body.links, mechanism: body.mechanism, bytes };
    },
  };
}

/** Log lines at pino's level error (50) or above: an error the server logged while answering. */
const errorLogs = () =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .filter((l) => {
      try {
        return (JSON.parse(l) as { level?: number }).level! >= 50;
      } catch {
        return false;
      }
    });

describe('issue #21: one process survives every malformed request of every front door', () => {
  it(
    `answers each as it must (seed ${SEED}), then, still the same process, takes an upload with every mechanism and publishes`,
    { timeout: 180_000 },
    async () => {
      const pid = child.pid!;
      const started = Date.now();

      // Every generator's requests, made (with valid requests for their own targets: a session, a
      // file) and shuffled by the seed. Generators share no target, so they run in parallel; the
      // requests of one generator go one after another.
      const runs = await Promise.all(
        FRONT_DOORS.flatMap((door) =>
          door.generators.map(async (generate, i) => {
            const name = `${door.name}#${i}`;
            return { door, name, requests: shuffle([...(await generate(context(name)))], seeded(`order:${name}`)) };
          }),
        ),
      );

      const failures: string[] = [];
      const perDoor: Record<string, number> = {};
      let passed = 0;
      let retries = 0;
      const run = async (door: FrontDoor, r: HostileRequest) => {
        let outcome = await exchange(r);
        // A transfer the previous request started may still be winding down when its client has its
        // answer (or its close) and moves on: the file's one slot is busy for a moment, as a client
        // that retries at once sees. Retry, as such a client would; a slot never freed fails.
        for (
          let i = 0;
          i < 40 && outcome.status === 409 && /upload-in-progress/.test(outcome.body) && !r.expect?.status.includes(409);
          i++
        ) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          retries += 1;
          outcome = await exchange(r);
        }
        const wrong = judge(r, outcome);
        if (wrong) failures.push(`${door.name} / ${r.name}: ${wrong}`);
        else passed += 1;
      };
      await Promise.all(
        runs.map(async ({ door, requests }) => {
          // Requests that wait for a 100 Continue they should not get send no body and change
          // nothing: they go all at once (the mechanisms read a refused request's body for up to the
          // linger time, 2 s, before answering, whether or not the client was invited to send it).
          const waiting = requests.filter((r) => r.client?.kind === 'expect-continue');
          await Promise.all([
            ...waiting.map((r) => run(door, r)),
            (async () => {
              for (const r of requests.filter((q) => !waiting.includes(q))) {
                await run(door, r);
                if (child.exitCode !== null || child.signalCode !== null) {
                  failures.push(
                    `${door.name} / ${r.name}: the server process ended (${child.exitCode ?? child.signalCode}): ${stderr.slice(0, 2000)}`,
                  );
                  return;
                }
              }
            })(),
          ]);
          perDoor[door.name] = (perDoor[door.name] ?? 0) + requests.length;
        }),
      );
      const hostileMs = Date.now() - started;
      expect(failures, `seed ${SEED}`).toEqual([]);
      const total = runs.reduce((n, d) => n + d.requests.length, 0);
      expect(passed).toBe(total);

      // The same process, never restarted.
      expect(child.exitCode).toBeNull();
      expect(child.signalCode).toBeNull();
      expect(() => process.kill(pid, 0)).not.toThrow();

      // A full upload with every mechanism (real wheels and an sdist, so the validator runs), and publish.
      const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));
      const ctx = context('final');
      const upload = async (session: { links: Record<string, string> }, filename: string, mechanism: string) => {
        const bytes = fixture(filename);
        const f = await ctx.file(session, filename, bytes, mechanism);
        if (mechanism === 'http-post-bytes') await uploadHttpPostBytes({ instructions: f.mechanism, body: bytes, authorization: AUTH });
        else if (mechanism.endsWith('-multipart')) await uploadMultipart({ instructions: f.mechanism, body: bytes, authorization: AUTH });
        else if (mechanism.includes('-resumable-')) await uploadResumable({ instructions: f.mechanism, body: bytes, authorization: AUTH });
        else await uploadTus({ instructions: f.mechanism, body: bytes, authorization: AUTH });
        await api('POST', f.links['complete']!, { meta: META }, 201);
      };
      const publish = async (session: { links: Record<string, string> }) => {
        const res = await fetch(session.links['publish']!, {
          method: 'POST',
          headers: { Authorization: AUTH, 'Content-Type': UPLOAD_V2_JSON },
          body: JSON.stringify({ meta: META }),
        });
        expect([201, 202], await res.clone().text()).toContain(res.status);
        for (let i = 0; i < 200; i++) {
          const s = await api('GET', session.links['session']!, undefined, 200);
          if (s.status === 'published') return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error('the session did not publish');
      };
      const first = await api('POST', url, { meta: META, name: 'demo-pkg', version: '1.0.0' }, 201);
      await upload(first, 'demo_pkg-1.0.0-py3-none-any.whl', 'vnd-pep694-multipart');
      await upload(first, 'demo_pkg-1.0.0.tar.gz', 'vnd-pep694-tus');
      await publish(first);
      const second = await api('POST', url, { meta: META, name: 'demo-pkg', version: '1.0.1' }, 201);
      await upload(second, 'demo_pkg-1.0.1-py3-none-any.whl', 'http-post-bytes');
      await publish(second);
      const third = await api('POST', url, { meta: META, name: 'demo-pkg-extra', version: '0.1.0' }, 201);
      await upload(third, 'demo_pkg_extra-0.1.0-py3-none-any.whl', 'vnd-pep694-resumable-i8');
      await upload(third, 'demo_pkg_extra-0.1.0.tar.gz', 'vnd-pep694-resumable-i6');
      await publish(third);
      const simple = await fetch(new URL('../simple/demo-pkg/', url));
      expect(simple.status).toBe(200);
      const page = await simple.text();
      for (const f of ['demo_pkg-1.0.0-py3-none-any.whl', 'demo_pkg-1.0.0.tar.gz', 'demo_pkg-1.0.1-py3-none-any.whl'])
        expect(page).toContain(f);

      // And through the legacy upload API, as twine sends it.
      // (a file of a release published above: legacy uploads may add files to a release)
      const sdist = 'demo_pkg-1.0.1.tar.gz';
      const legacy = await legacyUpload(new URL('../legacy/', url).href, { token: ALICE, filename: sdist, bytes: fixture(sdist) });
      expect(legacy.status, legacy.text).toBe(200);
      expect(await (await fetch(new URL('../simple/demo-pkg/', url))).text()).toContain(sdist);

      // Still the same process; nothing uncaught printed, no error logged.
      expect(child.pid).toBe(pid);
      expect(child.exitCode).toBeNull();
      expect(stderr).not.toMatch(/Uncaught|uncaught|Unhandled|unhandled|Error:|\n\s+at /);
      expect(errorLogs()).toEqual([]);

      // Every refused or cut-off transfer aborted its staging write: no partial write is left.
      // On S3 (the pg-s3 project) a staging write is a multipart upload in the bucket instead: none
      // may be left but tus's, whose uploads in progress live under <prefix>tus/ by design (as they
      // live under <data>/tus on files, which is not checked either: a cut-off tus upload resumes).
      const tmp = join(dir, 'data', 'tmp');
      const { bucket } = await backendsFor(join(dir, 'data'));
      const partial = async () =>
        bucket
          ? [
              ...(existsSync(tmp) ? readdirSync(tmp) : []),
              ...(await sharedTestS3().uploads(bucket.bucket)).filter((key) => !key.startsWith(`${bucket.prefix ?? ''}tus/`)),
            ]
          : readdirSync(tmp);
      for (let i = 0; i < 100 && (await partial()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await partial()).toEqual([]);

      tally('hostile cases', passed);
      console.log(
        `hostile-process: ${passed} hostile requests in ${hostileMs} ms (seed ${SEED}; per front door ${JSON.stringify(perDoor)}; ${retries} retries after 409 upload-in-progress); pid ${pid} survived and published`,
      );
    },
  );
});
