// The multipart mechanism against a raw busboy server, side by side in one run, as ratios
// (absolute figures drift on shared machines; ratios hold). Both get the same multipart body from
// the same client (node http, the file piped between the framing). Ours runs the whole PEP 694
// flow: session → file session → POST form → complete (verified) → publish, timed from the POST to
// the completion. Raw: http.createServer → busboy → sha256 → file, fsync.
//
//   pnpm run build && node plugins/multipart/bench/run.mjs
//
// Environment: BENCH_SIZES (MiB, comma separated, default "64,1024"), BENCH_RUNS (default 3),
// BENCH_ORDER=ours-first (default: raw first; the one that runs second inherits disk writeback),
// BENCH_DIR (where the data goes, default the OS temp dir). Writes
// bench-results/multipart.md and multipart.json at the repository root.
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const MiB = 1024 ** 2;
const sizes = (process.env.BENCH_SIZES ?? '64,1024').split(',').map((s) => Number(s) * MiB);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'pep694-bench-multipart-'));
const CLK_TCK = 100; // Linux USER_HZ

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)], min: s[0], max: s[s.length - 1] };
};
const mbps = (bytes, seconds) => bytes / 1e6 / seconds;

/** CPU seconds (user+system) a child process has used, and its peak RSS in MB. */
function procUsage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpu, peakRssMB: hwm ? Number(hwm[1]) / 1024 : NaN };
}

function startChild(script, args, marker) {
  const child = spawn(process.execPath, [script, ...args], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PEP694_LOG_LEVEL: 'warn' } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = new RegExp(`${marker} (\\S+)`).exec(out);
      if (m) resolve({ child, value: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${out}`)));
  });
}
const stop = (child) => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); });

/** POSTs `file` as the `content` part of a multipart form, framing written around the piped file. */
function postForm(url, file, bytes, headers = {}) {
  const boundary = `----pep694-bench-${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="upload.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + bytes + tail.length },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode < 300 ? resolve(res) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.write(head);
    const source = createReadStream(file, { highWaterMark: 64 * 1024 });
    source.on('error', reject);
    source.on('end', () => req.end(tail));
    source.pipe(req, { end: false });
  });
}

async function json(method, url, token, body) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function raw(file, bytes, sha256) {
  const { child, value: port } = await startChild(join(here, 'raw-busboy-server.mjs'), [join(work, 'raw')], 'PORT');
  const results = [];
  for (let i = 0; i < runs; i++) {
    const s0 = procUsage(child.pid).cpu;
    const t0 = process.hrtime.bigint();
    const res = await postForm(`http://127.0.0.1:${port}/`, file, bytes);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.headers['x-sha256'] !== sha256) throw new Error('raw peer: wrong sha256');
    results.push({ mbps: mbps(bytes, s), cpuPerGB: (procUsage(child.pid).cpu - s0) / (bytes / 1e9) });
  }
  const { peakRssMB } = procUsage(child.pid);
  await stop(child);
  return { results, peakRssMB };
}

async function ours(file, bytes, sha256) {
  const token = randomBytes(18).toString('base64url');
  const dataDir = join(work, `data-${bytes}`);
  const { child, value: url } = await startChild(join(here, 'pep694-server.mjs'), [dataDir, token], 'ROOT');
  const results = [];
  for (let i = 0; i < runs; i++) {
    const version = `1.0.${i}`;
    const session = await json('POST', url, token, { meta: { 'api-version': '2.0' }, name: 'benchpkg', version });
    const fs = await json('POST', session.links.upload, token, {
      meta: { 'api-version': '2.0' }, filename: `benchpkg-${version}.tar.gz`, size: bytes, hashes: { sha256 }, mechanism: 'vnd-bench-multipart',
    });
    const s0 = procUsage(child.pid).cpu;
    const t0 = process.hrtime.bigint();
    await postForm(fs.mechanism.file_url, file, bytes, { authorization: `Bearer ${token}` });
    const t1 = process.hrtime.bigint();
    const done = await json('POST', fs.links.complete, token, { meta: { 'api-version': '2.0' } });
    const t2 = process.hrtime.bigint();
    const s = Number(t2 - t0) / 1e9;
    const completeMs = Number(t2 - t1) / 1e6;
    if (done.status !== 'completed') throw new Error(`completion: ${JSON.stringify(done)}`);
    const cpu = procUsage(child.pid).cpu - s0;
    await json('POST', session.links.publish, token, { meta: { 'api-version': '2.0' } });
    results.push({ mbps: mbps(bytes, s), cpuPerGB: cpu / (bytes / 1e9), completeMs });
  }
  const { peakRssMB } = procUsage(child.pid);
  await stop(child);
  rmSync(dataDir, { recursive: true, force: true });
  return { results, peakRssMB };
}

async function makeFile(bytes) {
  const path = join(work, `upload-${bytes}`);
  const chunk = Buffer.alloc(4 * MiB);
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let done = 0; done < bytes; done += chunk.length) {
    const part = bytes - done < chunk.length ? chunk.subarray(0, bytes - done) : chunk;
    randomFillSync(part);
    h.update(part);
    if (!out.write(part)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  return { path, sha256: h.digest('hex') };
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const range = (st, d = 0) => `${fmt(st.median, d)} (${fmt(st.min, d)}–${fmt(st.max, d)})`;

async function main() {
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  const report = { date: new Date().toISOString(), cores: cpus().length, runs, node: process.version, uploads: [] };
  console.log(`bench multipart: ${report.cores} cores, ${runs} runs, sizes ${sizes.map((s) => s / MiB).join(', ')} MiB, work dir ${work}`);
  for (const bytes of sizes) {
    const file = await makeFile(bytes);
    // Alternate which goes first, so that neither always inherits the other's disk writeback.
    const oursFirst = process.env.BENCH_ORDER === 'ours-first';
    const o0 = oursFirst ? await ours(file.path, bytes, file.sha256) : undefined;
    const r = await raw(file.path, bytes, file.sha256);
    const o = o0 ?? (await ours(file.path, bytes, file.sha256));
    const rawT = stats(r.results.map((x) => x.mbps));
    const ourT = stats(o.results.map((x) => x.mbps));
    const rawC = stats(r.results.map((x) => x.cpuPerGB));
    const ourC = stats(o.results.map((x) => x.cpuPerGB));
    const entry = {
      mechanism: 'vnd-<operator>-multipart',
      sizeMiB: bytes / MiB,
      raw: { mbps: rawT, cpuPerGB: rawC, peakRssMB: r.peakRssMB },
      ours: { mbps: ourT, cpuPerGB: ourC, peakRssMB: o.peakRssMB, completeMs: stats(o.results.map((x) => x.completeMs)) },
      ratioToRaw: ourT.median / rawT.median,
      cpuRatioToRaw: ourC.median / rawC.median,
    };
    report.uploads.push(entry);
    console.log(`${bytes / MiB} MiB: ours ${fmt(ourT.median)} MB/s, raw busboy ${fmt(rawT.median)} MB/s, ratio ${fmt(entry.ratioToRaw, 2)}, CPU/GB ${fmt(ourC.median, 2)} vs ${fmt(rawC.median, 2)}, peak RSS ${fmt(o.peakRssMB)} vs ${fmt(r.peakRssMB)} MB, completion ${fmt(entry.ours.completeMs.median)} ms`);
    rmSync(file.path);
  }
  const lines = [
    '# multipart bench',
    '',
    `${report.date} · node ${report.node} · ${report.cores} cores · ${runs} runs per figure; median (min–max). CPU is the server's user+system seconds.`,
    '',
    'Ours: the full PEP 694 flow through @pep694/server with vnd-<operator>-multipart, timed from the POST of the form to the verified completion. Raw: `http.createServer` → busboy → sha256 Transform → file, fsync. Same client and body for both.',
    '',
    '| size | ours MB/s | raw busboy MB/s | ours/raw (target ≥ 0.9) | ours CPU s/GB | raw CPU s/GB | CPU ratio | ours peak RSS MB (target < 150) | raw peak RSS MB | completion ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...report.uploads.map((u) => `| ${u.sizeMiB} MiB | ${range(u.ours.mbps)} | ${range(u.raw.mbps)} | ${fmt(u.ratioToRaw, 2)} | ${range(u.ours.cpuPerGB, 2)} | ${range(u.raw.cpuPerGB, 2)} | ${fmt(u.cpuRatioToRaw, 2)} | ${fmt(u.ours.peakRssMB)} | ${fmt(u.raw.peakRssMB)} | ${range(u.ours.completeMs)} |`),
    '',
  ];
  writeFileSync(join(root, 'bench-results', 'multipart.md'), lines.join('\n'));
  writeFileSync(join(root, 'bench-results', 'multipart.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log('\nwrote bench-results/multipart.md and multipart.json');
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
