// `pnpm bench`: throughput, CPU and memory of uploads, measured side by side in one run and
// reported as ratios (absolute figures drift on shared machines; ratios hold). Writes
// bench-results/report.md and report.json. Environment: BENCH_SIZES (MiB, comma separated,
// default "64,1024"), BENCH_RUNS (default 3).
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const MiB = 1024 ** 2;
const sizes = (process.env.BENCH_SIZES ?? '64,1024').split(',').map((s) => Number(s) * MiB);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'pep694-bench-'));
const CLK_TCK = 100; // Linux USER_HZ
const cores = cpus().length;

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
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function startChild(script, args, marker) {
  const child = spawn(process.execPath, [script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
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

function post(url, file, headers) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode < 300 ? resolve(res) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    pipeline(createReadStream(file, { highWaterMark: 64 * 1024 }), req).catch(reject);
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

// ---- floors -----------------------------------------------------------------------------------

function hashFloor(alg, bytes) {
  const buf = randomBytes(MiB);
  const c0 = selfCpu();
  const t0 = process.hrtime.bigint();
  const h = createHash(alg);
  for (let done = 0; done < bytes; done += MiB) h.update(buf);
  h.digest();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { mbps: mbps(bytes, s), cpuPerGB: (selfCpu() - c0) / (bytes / 1e9) };
}

async function diskFloor(bytes) {
  const path = join(work, 'disk-floor');
  const buf = randomBytes(64 * 1024);
  const c0 = selfCpu();
  const t0 = process.hrtime.bigint();
  let left = bytes / buf.length;
  await pipeline(Readable.from((function* () { while (left-- > 0) yield buf; })()), createWriteStream(path));
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(path);
  return { mbps: mbps(bytes, s), cpuPerGB: (selfCpu() - c0) / (bytes / 1e9) };
}

async function loopbackFloor(file, bytes) {
  const { child, value: port } = await startChild(join(here, 'raw-server.mjs'), ['discard'], 'PORT');
  const s0 = procUsage(child.pid).cpu;
  const c0 = selfCpu();
  const t0 = process.hrtime.bigint();
  await post(`http://127.0.0.1:${port}/`, file, { 'content-type': 'application/octet-stream', 'content-length': bytes });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const server = procUsage(child.pid).cpu - s0;
  const client = selfCpu() - c0;
  await stop(child);
  return { mbps: mbps(bytes, s), serverCpuPerGB: server / (bytes / 1e9), clientCpuPerGB: client / (bytes / 1e9) };
}

// ---- uploads ----------------------------------------------------------------------------------

async function rawPeer(file, bytes) {
  const { child, value: port } = await startChild(join(here, 'raw-server.mjs'), ['disk', join(work, 'raw')], 'PORT');
  const results = [];
  for (let i = 0; i < runs; i++) {
    const s0 = procUsage(child.pid).cpu;
    const t0 = process.hrtime.bigint();
    await post(`http://127.0.0.1:${port}/`, file, { 'content-type': 'application/octet-stream', 'content-length': bytes });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
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
      meta: { 'api-version': '2.0' }, filename: `benchpkg-${version}.tar.gz`, size: bytes, hashes: { sha256 }, mechanism: 'http-post-bytes',
    });
    const s0 = procUsage(child.pid).cpu;
    const t0 = process.hrtime.bigint();
    await post(fs.mechanism.file_url, file, { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': bytes });
    const done = await json('POST', fs.links.complete, token, { meta: { 'api-version': '2.0' } });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (done.status !== 'completed') throw new Error(`completion: ${JSON.stringify(done)}`);
    const cpu = procUsage(child.pid).cpu - s0;
    const p0 = process.hrtime.bigint();
    await json('POST', session.links.publish, token, { meta: { 'api-version': '2.0' } });
    const publishMs = Number(process.hrtime.bigint() - p0) / 1e6;
    results.push({ mbps: mbps(bytes, s), cpuPerGB: cpu / (bytes / 1e9), publishMs });
  }
  const { peakRssMB } = procUsage(child.pid);
  await stop(child);
  rmSync(dataDir, { recursive: true, force: true });
  return { results, peakRssMB };
}

// ---- main -------------------------------------------------------------------------------------

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
  const report = { date: new Date().toISOString(), cores, runs, node: process.version, floors: {}, uploads: [] };
  const floorBytes = 1024 * MiB;
  console.log(`bench: ${cores} cores, ${runs} runs, sizes ${sizes.map((s) => s / MiB).join(', ')} MiB, work dir ${work}`);
  report.floors.sha256 = hashFloor('sha256', floorBytes);
  report.floors.blake2b = hashFloor('blake2b512', floorBytes);
  report.floors.disk = await diskFloor(floorBytes);
  const floorFile = await makeFile(Math.min(...sizes, floorBytes));
  report.floors.loopback = await loopbackFloor(floorFile.path, Math.min(...sizes, floorBytes));
  const f = report.floors;
  // CPU seconds per GB of one verified upload: client send + receive + sha256 + write.
  const cpuPerGB = f.loopback.clientCpuPerGB + f.loopback.serverCpuPerGB + f.sha256.cpuPerGB + f.disk.cpuPerGB;
  f.cpuLimit = { cpuPerGB, mbps: (cores / cpuPerGB) * 1000 };
  console.log(`floors: sha256 ${fmt(f.sha256.mbps)} MB/s, blake2b ${fmt(f.blake2b.mbps)} MB/s, disk ${fmt(f.disk.mbps)} MB/s, loopback ${fmt(f.loopback.mbps)} MB/s, CPU limit ${fmt(f.cpuLimit.mbps)} MB/s`);

  for (const bytes of sizes) {
    const file = await makeFile(bytes);
    const raw = await rawPeer(file.path, bytes);
    const our = await ours(file.path, bytes, file.sha256);
    const rawT = stats(raw.results.map((r) => r.mbps));
    const ourT = stats(our.results.map((r) => r.mbps));
    const rawC = stats(raw.results.map((r) => r.cpuPerGB));
    const ourC = stats(our.results.map((r) => r.cpuPerGB));
    const entry = {
      mechanism: 'http-post-bytes',
      sizeMiB: bytes / MiB,
      raw: { mbps: rawT, cpuPerGB: rawC, peakRssMB: raw.peakRssMB },
      ours: { mbps: ourT, cpuPerGB: ourC, peakRssMB: our.peakRssMB, publishMs: stats(our.results.map((r) => r.publishMs)) },
      ratioToRaw: ourT.median / rawT.median,
      ratioToCpuLimit: ourT.median / f.cpuLimit.mbps,
      cpuRatioToRaw: ourC.median / rawC.median,
    };
    report.uploads.push(entry);
    console.log(`${bytes / MiB} MiB: ours ${fmt(ourT.median)} MB/s, raw ${fmt(rawT.median)} MB/s, ratio ${fmt(entry.ratioToRaw, 2)}, CPU/GB ${fmt(ourC.median, 2)} vs ${fmt(rawC.median, 2)}, peak RSS ${fmt(our.peakRssMB)} MB`);
    rmSync(file.path);
  }

  const lines = [
    `# pnpm bench`,
    ``,
    `${report.date} · node ${report.node} · ${cores} cores · ${runs} runs per figure; median (min–max).`,
    `Client and servers share the machine's cores, so uploads are CPU-bound; CPU is user+system seconds.`,
    ``,
    `## Floors`,
    ``,
    `| what | MB/s | CPU s/GB |`,
    `| --- | --- | --- |`,
    `| sha256 (node crypto, one core) | ${fmt(f.sha256.mbps)} | ${fmt(f.sha256.cpuPerGB, 2)} |`,
    `| blake2b (node crypto, one core) | ${fmt(f.blake2b.mbps)} | ${fmt(f.blake2b.cpuPerGB, 2)} |`,
    `| sequential write + fsync (data dir's disk) | ${fmt(f.disk.mbps)} | ${fmt(f.disk.cpuPerGB, 2)} |`,
    `| loopback POST to a discarding server | ${fmt(f.loopback.mbps)} | client ${fmt(f.loopback.clientCpuPerGB, 2)}, server ${fmt(f.loopback.serverCpuPerGB, 2)} |`,
    `| **CPU limit of a verified upload** (${cores} cores / (client + receive + sha256 + write)) | **${fmt(f.cpuLimit.mbps)}** | ${fmt(f.cpuLimit.cpuPerGB, 2)} |`,
    ``,
    `## http-post-bytes through the full PEP 694 flow vs a raw node pipeline`,
    ``,
    `Ours: create session → file session → POST bytes → complete (verified) → publish; timed from the POST to the completion. Raw: \`http.createServer\` streaming to a file through sha256, fsync.`,
    ``,
    `| size | ours MB/s | raw MB/s | ours/raw (target ≥ 0.9) | ours/CPU limit (target ≥ 0.8) | ours CPU s/GB | raw CPU s/GB | CPU ratio (target ≤ 1.1) | ours peak RSS MB | raw peak RSS MB | publish ms |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...report.uploads.map((u) => `| ${u.sizeMiB} MiB | ${range(u.ours.mbps)} | ${range(u.raw.mbps)} | ${fmt(u.ratioToRaw, 2)} | ${fmt(u.ratioToCpuLimit, 2)} | ${range(u.ours.cpuPerGB, 2)} | ${range(u.raw.cpuPerGB, 2)} | ${fmt(u.cpuRatioToRaw, 2)} | ${fmt(u.ours.peakRssMB)} | ${fmt(u.raw.peakRssMB)} | ${range(u.ours.publishMs, 1)} |`),
    ``,
    `Not yet measured here: vnd tus and multipart peers, 16-way concurrency, control-plane latency (see the bench issue).`,
    ``,
  ];
  writeFileSync(join(root, 'bench-results', 'report.md'), lines.join('\n'));
  writeFileSync(join(root, 'bench-results', 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote bench-results/report.md and report.json`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
