// Diagnosis harness (not part of pnpm bench): where the time of completing and publishing a big
// file on S3 (s3rver) goes, next to a 1 KiB file. For each file, the full flow through our host
// (http-post-bytes), then the completion and the publish timed by the client, each split into:
// s3rver's own time (its request log: count, bytes, copies, ms from arrival to answer), the host's
// blob and store calls (from its /metrics histograms), the host's GC, and the CPU of host and
// s3rver during the step.
//
//   node scripts/bench/exp-s3-publish.mjs [bigMiB=1024] [rounds=3] [pauseMs=0] [nosync] [cross]
//
// By default each file is completed and published right after its own upload (a `sync` and
// `pauseMs` in between; `nosync` leaves the sync out), the big file then three 1 KiB files per
// round. With `cross`, a big and a 1 KiB file are both uploaded first, then completed and
// published in alternating order (the same history for both, as the bench's s3 section does).
// EXP_PATHS=1 prints the object path of every request to s3rver.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
import { NODE_FLAGS } from '@pep694/reference-index/node-flags';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const [bigMiB = '1024', rounds = '3', pauseMs = '0', ...flags] = process.argv.slice(2);
const doSync = !flags.includes('nosync');
const MiB = 1024 ** 2;
const work = mkdtempSync(join(tmpdir(), 'exp-s3-'));
const children = [];

function child(script, args, marker, env = {}) {
  const c = spawn(process.execPath, [...NODE_FLAGS, script, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  children.push(c);
  return new Promise((resolve, reject) => {
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
      const m = new RegExp(`${marker} (\\S+)`).exec(out);
      if (m) resolve({ child: c, value: m[1] });
    });
    c.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}

async function makeFile(bytes) {
  const path = join(work, `f-${bytes}`);
  const chunk = Buffer.alloc(Math.min(4 * MiB, bytes));
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let done = 0; done < bytes; done += chunk.length) {
    randomFillSync(chunk);
    h.update(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  return { path, size: bytes, sha256: h.digest('hex') };
}

const cpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) / 100) * 1000;
};

/** Sums of the host's histograms (ms) by series, and GC ms by kind. */
async function metrics(url) {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const out = {};
  for (const line of text.split('\n')) {
    const lag = /^nodejs_eventloop_lag_max_seconds (\S+)/.exec(line);
    if (lag) out.lagmax = Number(lag[1]) * 1000;
    const m =
      /^(pep694_(?:store|blob)_operation_duration_seconds|nodejs_gc_duration_seconds|pep694_http_request_duration_seconds)_sum\{([^}]*)\} (\S+)/.exec(
        line,
      );
    if (!m) continue;
    const label = /(?:operation|kind|route)="([^"]+)"/.exec(m[2])[1];
    if (label === 'metrics') continue;
    const kind = m[1].startsWith('nodejs') ? 'gc' : m[1].includes('http') ? 'http' : m[1].includes('store') ? 'store' : 'blob';
    const key = `${kind}.${kind === 'http' ? label.split(' ')[0] : label}`;
    out[key] = (out[key] ?? 0) + Number(m[3]) * 1000;
  }
  return out;
}
const diff = (a, b) =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, b[k] - (a[k] ?? 0)])
      .filter(([, v]) => v > 0.05),
  );

const s3info = await child(join(here, 's3rver.mjs'), [], 'S3ENV');
const s3 = JSON.parse(Buffer.from(s3info.value, 'base64url').toString());
const token = randomBytes(18).toString('base64url');
const host = await child(join(here, 'pep694-server.mjs'), [join(work, 'data'), token, '0'], 'ROOT', {
  ...s3.env,
  BENCH_BLOBS: s3.env.PEP694_BLOBS,
});
const url = host.value;
const take = async () => (await fetch(s3.log)).json();
const hdr = { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.pypi.upload.v2+json' };
const api = async (method, u, body) => {
  const res = await fetch(u, { method, headers: hdr, body: body && JSON.stringify(body) });
  const t = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${u}: ${res.status} ${t}`);
  return JSON.parse(t);
};
const META = { 'api-version': '2.0' };
let seq = 0;

/** Times `fn` with everything around it: client ms, s3rver requests, host histograms and CPU. */
async function step(fn) {
  await take();
  const m0 = await metrics(url);
  const c0 = [cpu(host.child.pid), cpu(s3info.child.pid)];
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c1 = [cpu(host.child.pid), cpu(s3info.child.pid)];
  const taken = await take();
  const reqs = taken.requests;
  const m1 = await metrics(url);
  m1.lagmax = m1.lagmax ?? 0;
  m0.lagmax = 0;
  return {
    ms,
    s3: {
      n: reqs.length,
      ms: reqs.reduce((s, r) => s + r.ms, 0),
      copies: reqs.filter((r) => r.copy).length,
      reqs,
      gc: taken.gcMs,
      lag: taken.loopDelayMaxMs,
    },
    host: diff(m0, m1),
    cpu: { host: c1[0] - c0[0], s3rver: c1[1] - c0[1] },
  };
}

async function prepare(f) {
  const name = `exps3${seq++}`;
  const session = await api('POST', url, { meta: META, name, version: '1.0' });
  const file = await api('POST', session.links.upload, {
    meta: META,
    filename: `${name}-1.0.tar.gz`,
    size: f.size,
    hashes: { sha256: f.sha256 },
    mechanism: 'http-post-bytes',
  });
  await uploadHttpPostBytes({ instructions: file.mechanism, body: f.path, authorization: `Bearer ${token}` });
  return { session, file };
}

async function once(f) {
  const { session, file } = await prepare(f);
  if (doSync) spawnSync('sync');
  if (Number(pauseMs)) await new Promise((r) => setTimeout(r, Number(pauseMs)));
  const complete = await step(() => api('POST', file.links.complete, { meta: META }));
  if (doSync) spawnSync('sync');
  const publish = await step(() => api('POST', session.links.publish, { meta: META }));
  return { complete, publish };
}

const fmtStep = (s) =>
  `${s.ms.toFixed(1)} ms | s3rver ${s.s3.n} req ${s.s3.ms.toFixed(1)} ms gc ${s.s3.gc.toFixed(1)} lagmax ${s.s3.lag.toFixed(0)}${s.s3.copies ? ` ${s.s3.copies} COPIES` : ''} [${s.s3.reqs.map((r) => `${r.method} ${process.env.EXP_PATHS ? r.path : ''}${r.query ? '?' + r.query : ''} ${r.ms.toFixed(1)}`).join(', ')}] | host ${Object.entries(
    s.host,
  )
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ')} | cpu host ${s.cpu.host} s3rver ${s.cpu.s3rver}`;

try {
  const big = await makeFile(Number(bigMiB) * MiB);
  const tiny = await makeFile(1024);
  await once(tiny); // warm-up
  const cross = flags.includes('cross');
  for (let i = 0; cross && i < Number(rounds); i++) {
    // Both uploaded first, then their completions and publishes in alternating order: the same
    // aftermath of the big upload for both.
    const a = { f: big, ...(await prepare(big)) };
    const b = { f: tiny, ...(await prepare(tiny)) };
    const order = i % 2 ? [b, a] : [a, b];
    if (doSync) spawnSync('sync');
    for (const x of order) x.complete = await step(() => api('POST', x.file.links.complete, { meta: META }));
    if (doSync) spawnSync('sync');
    for (const x of order) x.publish = await step(() => api('POST', x.session.links.publish, { meta: META }));
    for (const x of order) {
      const label = x.f === big ? `${bigMiB} MiB` : '1 KiB';
      console.log(`${label.padEnd(9)} complete ${fmtStep(x.complete)}`);
      console.log(`${label.padEnd(9)} publish  ${fmtStep(x.publish)}`);
    }
  }
  for (let i = 0; !cross && i < Number(rounds); i++) {
    for (const f of [big, tiny, tiny, tiny]) {
      const r = await once(f);
      const label = f === big ? `${bigMiB} MiB` : '1 KiB';
      console.log(`${label.padEnd(9)} complete ${fmtStep(r.complete)}`);
      console.log(`${label.padEnd(9)} publish  ${fmtStep(r.publish)}`);
    }
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
