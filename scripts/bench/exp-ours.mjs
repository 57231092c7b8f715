// Diagnosis harness (not part of pnpm bench): N uploads of FILE through our host (full flow) or a raw peer,
// printing server/client CPU per GB per upload.  node exp-ours.mjs <ours,raw-http,...> <file> <n> [node flags for the child...]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
const here = dirname(fileURLToPath(import.meta.url));
const [which, file, n, ...flags] = process.argv.slice(2);
const size = statSync(file).size;
const sha256 = await new Promise((r) => {
  const h = createHash('sha256');
  createReadStream(file, { highWaterMark: 1 << 20 })
    .on('data', (c) => h.update(c))
    .on('end', () => r(h.digest('hex')));
});
const procCpu = (p) => {
  const s = readFileSync(`/proc/${p}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const ctx = (pid) => {
  let n = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]);
    } catch {
      /* the thread ended between readdir and read */
    }
  }
  return n;
};
const self = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const work = mkdtempSync(join(tmpdir(), 'exp-ours-'));
const token = randomBytes(18).toString('base64url');
const META = { 'api-version': '2.0' };
async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    body: body && JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url} ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
async function start(w) {
  const args =
    w === 'ours'
      ? [join(here, 'pep694-server.mjs'), join(work, 'data'), token]
      : [join(here, 'raw-server.mjs'), w.replace('raw-', ''), join(work, 'raw')];
  const child = spawn(process.execPath, [...flags, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  const base = await new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', function on(d) {
      out += d;
      const m = /(ROOT|PORT) (\S+)/.exec(out);
      if (m) {
        child.stdout.off('data', on);
        child.stdout.pipe(process.stderr);
        resolve(m[1] === 'ROOT' ? m[2] : `http://127.0.0.1:${m[2]}/`);
      }
    });
  });
  return { w, child, base };
}
const peers = [];
for (const w of which.split(',')) peers.push(await start(w));
let seq = 0;
const acc = Object.fromEntries(peers.map((p) => [p.w, []]));
for (let i = 0; i < Number(n); i++) {
  const line = [];
  for (const { w, child, base } of i % 2 ? [...peers].reverse() : peers) {
    let map, fs, session;
    if (w === 'ours') {
      session = await api('POST', base, { meta: META, name: `p${seq}`, version: '1.0' });
      fs = await api('POST', session.links.upload, {
        meta: META,
        filename: `p${seq++}-1.0.tar.gz`,
        size,
        hashes: { sha256 },
        mechanism: 'http-post-bytes',
      });
      map = fs.mechanism;
    } else map = { identifier: 'http-post-bytes', file_url: base };
    const x0 = ctx(child.pid),
      y0 = ctx(process.pid),
      s0 = procCpu(child.pid),
      c0 = self(),
      t0 = process.hrtime.bigint();
    await uploadHttpPostBytes({ instructions: map, body: file, authorization: `Bearer ${token}` });
    if (fs) {
      const d = await api('POST', fs.links.complete, { meta: META });
      if (d.status !== 'completed') throw new Error(JSON.stringify(d));
    }
    const sec = Number(process.hrtime.bigint() - t0) / 1e9,
      gb = size / 1e9;
    const r = {
      mbps: size / 1e6 / sec,
      server: (procCpu(child.pid) - s0) / gb,
      client: (self() - c0) / gb,
      sctx: (ctx(child.pid) - x0) / (size / 1048576),
      cctx: (ctx(process.pid) - y0) / (size / 1048576),
    };
    acc[w].push(r);
    line.push(
      `${w} ${r.mbps.toFixed(0)} MB/s srv ${r.server.toFixed(2)} cli ${r.client.toFixed(2)} cs/MiB ${r.sctx.toFixed(1)}/${r.cctx.toFixed(1)}`,
    );
    if (session) {
      await api('POST', session.links.publish, { meta: META });
      rmSync(join(work, 'data', 'blobs', 'files'), { recursive: true, force: true });
    }
  }
  console.log(line.join(' | '));
}
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const skip = Number(process.env.SKIP ?? 2);
for (const w of Object.keys(acc)) {
  const rs = acc[w].slice(skip);
  console.log(
    `${w}: median after ${skip} ${med(rs.map((r) => r.mbps)).toFixed(0)} MB/s srv ${med(rs.map((r) => r.server)).toFixed(2)} cli ${med(rs.map((r) => r.client)).toFixed(2)} s/GB, context switches per MiB server ${med(rs.map((r) => r.sctx)).toFixed(1)} client ${med(rs.map((r) => r.cctx)).toFixed(1)}`,
  );
}
if (peers.length === 2)
  console.log(
    `server CPU ratio ${peers[0].w}/${peers[1].w} median of pairs after ${skip}: ${med(acc[peers[0].w].slice(skip).map((r, i) => r.server / acc[peers[1].w][i + skip].server)).toFixed(2)}`,
  );
if (process.env.THREADS)
  for (const p of peers)
    for (const t of readdirSync(`/proc/${p.child.pid}/task`)) {
      const st = readFileSync(`/proc/${p.child.pid}/task/${t}/status`, 'utf8');
      const f = readFileSync(`/proc/${p.child.pid}/task/${t}/stat`, 'utf8');
      const ff = f.slice(f.lastIndexOf(')') + 2).split(' ');
      console.log(
        p.w,
        t,
        /^Name:\s+(.*)$/m.exec(st)[1],
        'vol',
        /^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1],
        'invol',
        /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1],
        'cpu',
        (Number(ff[11]) + Number(ff[12])) / 100,
      );
    }
for (const p of peers) {
  p.child.kill('SIGTERM');
  await new Promise((r) => p.child.once('exit', r));
}
rmSync(work, { recursive: true, force: true });
