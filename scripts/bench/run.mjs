// `pnpm bench`: throughput, CPU, memory and control-plane speed of our server, measured side by
// side with raw peers in one run and reported as ratios with their targets (absolute figures drift
// on shared machines; ratios measured in the same run hold). Writes report.md and report.json to
// bench-results/ (or BENCH_OUT).
//
//   pnpm bench                       full run (about 10 minutes on 2 cores)
//   pnpm bench --quick               8 MiB files, one run, short control-plane runs (CI: it runs)
//
// Environment:
//   BENCH_SIZES            file sizes in MiB, comma separated (default "64,1024"; quick "8")
//   BENCH_RUNS             repetitions of every figure (default 5; quick 1)
//   BENCH_ONLY             sections, comma separated (default all of):
//                          floors,http-post-bytes,tus,multipart,resumable,legacy,concurrency,control,
//                          control-postgres,index,client,s3,s3-presigned,cluster (control-postgres needs Debian's
//                          postgresql package, as the tests do; see packages/store-postgres)
//                          (cluster: one reference-index node direct vs three behind examples/cluster's proxy,
//                          on PostgreSQL + s3rver; control-plane req/s and a small upload burst)
//                          and, only when named, preload: the raw node pipeline in a bare process
//                          next to the same pipeline in a process that imported @pep694/server and
//                          the plugins, or that also runs our host (idle), and our host itself
//   BENCH_S3_MIB           s3 section: size of the http-post-bytes uploads into S3 (s3rver) and
//                          into the filesystem, side by side, in MiB (default 64; quick 8)
//   BENCH_S3_PUBLISH_MIB   s3 section: the big file of "publishing N MiB ÷ 1 KiB" on S3 (default
//                          1024; quick 8)
//   BENCH_S3P_MIB          s3-presigned section: size of the uploads through
//                          vnd-bench-s3multipart-presigned and http-post-bytes into the same S3
//                          backend (s3rver), side by side, in MiB (default 1024; quick 8)
//   BENCH_CONCURRENCY      simultaneous uploads in the concurrency section (default 16)
//   BENCH_CONC_MIB         size of each of them in MiB (default 64; quick 8)
//   BENCH_CONTROL_SECONDS  duration of each autocannon run (default 5; quick 1)
//   BENCH_CONNECTIONS      autocannon connections (default 64)
//   BENCH_CURL             0 leaves out the http-post-bytes rows with curl -T as the client
//                          (default: measured next to the rows with our client half)
//   BENCH_RTT_MS           client section: the round trip of the second release comparison,
//                          through delay-proxy.mjs (default 20; 0 leaves it out)
//   BENCH_DIR              where files and data dirs go (default the OS temp dir)
//   BENCH_OUT              where the report goes (default <repo>/bench-results)
//   BENCH_CHILD_ARGS       node flags for every server child process, space separated, for
//                          diagnosis (e.g. "--trace-gc" or "--cpu-prof --cpu-prof-dir=/tmp/prof");
//                          what a child prints after its marker line goes to a file
//                          <pid>-<script>.log in the directory BENCH_CHILD_LOG (default: dropped)
//
// Every server under test runs in its own process: its CPU (user+system from /proc/<pid>/stat)
// and peak RSS (VmHWM) are its own. The client is this process, with the same client code for a
// mechanism and its raw peer (the mechanism's own client half); for http-post-bytes, also curl
// (its own process, its CPU counted as the client's). Within every repetition the
// peers take turns going first (rotated), since the one that runs second inherits the other's
// disk writeback; uploaded and published files are deleted after every run.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
import { uploadMultipart } from '@pep694/mechanism-multipart/client';
import { uploadTus } from '@pep694/mechanism-tus/client';
import Pg from 'pg';
import { postgresBinDir } from '@pep694/store-postgres/testing';
import { NODE_FLAGS } from '@pep694/reference-index/node-flags';
import { bash, clientSection } from './client.mjs';
import { clusterSection, renderCluster } from './cluster.mjs';
import { uploadResumable } from '@pep694/mechanism-resumable/client';
import { uploadS3Presigned } from '@pep694/mechanism-s3-presigned/client';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const MiB = 1024 ** 2;
const quick = process.argv.includes('--quick');
const env = (name, fallback) => process.env[name] ?? fallback;
const sizes = env('BENCH_SIZES', quick ? '8' : '64,1024')
  .split(',')
  .map((s) => Math.round(Number(s) * MiB));
const runs = Number(env('BENCH_RUNS', quick ? 1 : 5));
const SECTIONS = [
  'floors',
  'http-post-bytes',
  'tus',
  'multipart',
  'resumable',
  'legacy',
  'concurrency',
  'control',
  'control-postgres',
  'index',
  'client',
  's3',
  's3-presigned',
  'cluster',
];
/** Not in the default run: the raw node pipeline in a bare process vs one that loaded (or runs) our host. */
const EXTRA_SECTIONS = ['preload'];
const only = new Set(
  env('BENCH_ONLY', SECTIONS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
for (const s of only)
  if (![...SECTIONS, ...EXTRA_SECTIONS].includes(s))
    throw new Error(`BENCH_ONLY: unknown section ${s} (known: ${[...SECTIONS, ...EXTRA_SECTIONS].join(', ')})`);
const concurrency = Number(env('BENCH_CONCURRENCY', 16));
const concBytes = Math.round(Number(env('BENCH_CONC_MIB', quick ? 8 : 64)) * MiB);
const s3Bytes = Math.round(Number(env('BENCH_S3_MIB', quick ? 8 : 64)) * MiB);
const s3PublishBytes = Math.round(Number(env('BENCH_S3_PUBLISH_MIB', quick ? 8 : 1024)) * MiB);
const s3pBytes = Math.round(Number(env('BENCH_S3P_MIB', quick ? 8 : 1024)) * MiB);
const controlSeconds = Number(env('BENCH_CONTROL_SECONDS', quick ? 1 : 5));
const connections = Number(env('BENCH_CONNECTIONS', 64));
const floorBytes = quick ? 128 * MiB : 1024 * MiB;
const outDir = env('BENCH_OUT', join(root, 'bench-results'));
const work = mkdtempSync(join(env('BENCH_DIR', tmpdir()), 'pep694-bench-'));
const CLK_TCK = 100; // Linux USER_HZ
const cores = cpus().length;
const GB = 1e9;

// ---- measuring --------------------------------------------------------------------------------

const stats = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = (s.length - 1) / 2;
  return { median: (s[Math.floor(mid)] + s[Math.ceil(mid)]) / 2, min: s[0], max: s[s.length - 1], n: s.length };
};
const mbps = (bytes, seconds) => bytes / 1e6 / seconds;
const now = () => process.hrtime.bigint();
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const rotate = (xs, i) => xs.map((_, k) => xs[(k + i) % xs.length]);

/** CPU seconds (user+system, all threads) a child process has used, and its peak RSS in MB. */
function procUsage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpu, peakRssMB: hwm ? Number(hwm[1]) / 1024 : NaN };
}
/** CPU seconds per thread of a process (tid → seconds): to tell a saturated thread from idle waiting. */
function threadCpu(pid) {
  const out = new Map();
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
    } catch {
      // the thread ended
    }
  }
  return out;
}
/** Busy share of the wall time of a process's main thread, and of its busiest other thread. */
function threadShares(pid, before, after, seconds) {
  let main = 0;
  let other = 0;
  for (const [tid, cpu] of after) {
    const d = cpu - (before.get(tid) ?? 0);
    if (tid === String(pid)) main = d;
    else other = Math.max(other, d);
  }
  return { main: main / seconds, otherThread: other / seconds };
}
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** Busy CPU seconds of the whole machine (all cores): to tell how much other processes took. */
function machineBusy() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK;
}

/**
 * Runs `fn` and measures wall time, the CPU of the server processes `pids`, this process's CPU
 * (the client), and the share of the machine other processes took meanwhile (noise).
 */
async function measure(pids, fn) {
  const s0 = pids.map((pid) => procUsage(pid).cpu);
  const st0 = threadCpu(pids[0]);
  const ct0 = threadCpu(process.pid);
  const c0 = selfCpu();
  const b0 = machineBusy();
  const t0 = now();
  const extra = (await fn()) ?? {};
  const seconds = since(t0);
  const cpuByPid = pids.map((pid, k) => procUsage(pid).cpu - s0[k]);
  const serverCpu = cpuByPid.reduce((sum, x) => sum + x, 0);
  const clientCpu = selfCpu() - c0;
  const other = Math.max(0, machineBusy() - b0 - serverCpu - clientCpu);
  const serverThreads = threadShares(pids[0], st0, threadCpu(pids[0]), seconds);
  const clientThreads = threadShares(process.pid, ct0, threadCpu(process.pid), seconds);
  return {
    seconds,
    serverCpu,
    clientCpu,
    otherLoad: other / (seconds * cores),
    cpuByPid,
    // Busy share of wall time: near 1 means that thread is the bottleneck.
    serverMain: serverThreads.main,
    serverThread: serverThreads.otherThread,
    clientMain: clientThreads.main,
    ...extra,
  };
}

// ---- processes --------------------------------------------------------------------------------

const children = new Set();
/**
 * Node flags of every server child, ours and the raw peers alike: the ones the reference index is
 * run with (`NODE_FLAGS` of `@pep694/reference-index/node-flags`, which says why: without them V8
 * falls into storms of mark-compacts under upload load).
 */
const SERVER_NODE_FLAGS = [...NODE_FLAGS];
function startChild(script, args, marker, extraEnv = {}, { stdin = 'ignore' } = {}) {
  const flags = [...SERVER_NODE_FLAGS, ...env('BENCH_CHILD_ARGS', '').split(' ').filter(Boolean)];
  const child = spawn(process.execPath, [...flags, script, ...args], {
    cwd: root,
    stdio: [stdin, 'pipe', 'inherit'],
    env: { ...process.env, ...extraEnv },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const m = new RegExp(`${marker} (\\S+)`).exec(out);
      if (!m) return;
      resolve({ child, value: m[1] });
      // Past the marker the output is diagnosis only (BENCH_CHILD_ARGS): never held in memory.
      child.stdout.off('data', onData);
      const log = process.env.BENCH_CHILD_LOG;
      if (log)
        child.stdout.pipe(
          createWriteStream(join(log, `${child.pid}-${basename(script, '.mjs')}${script.includes('raw') ? `-${args[0]}` : ''}.log`)),
        );
      else child.stdout.resume();
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${out}`)));
  });
}
const stop = (child) =>
  new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', r);
    child.kill('SIGTERM');
  });

async function startRaw(mode, extraEnv) {
  const { child, value: port } = await startChild(
    join(here, 'raw-server.mjs'),
    [mode, join(work, `raw-${mode}-${randomBytes(4).toString('hex')}`)],
    'PORT',
    extraEnv,
  );
  return { child, port: Number(port), base: `http://127.0.0.1:${port}` };
}

/**
 * Our host (pep694-server.mjs) with its own data dir (or `opts.dataDir`: a second process on the
 * same database); `restart` brings it back on the same port. `opts.env` goes to the child.
 */
async function startOurs(tag, opts = {}) {
  const token = opts.token ?? randomBytes(18).toString('base64url');
  const dataDir = opts.dataDir ?? join(work, `ours-${tag}-${randomBytes(4).toString('hex')}`);
  const srv = { token, dataDir, auth: `Bearer ${token}` };
  const launch = async (port) => {
    const { child, value: url } = await startChild(join(here, 'pep694-server.mjs'), [dataDir, token, String(port)], 'ROOT', opts.env);
    srv.child = child;
    srv.url = url;
    srv.port = Number(new URL(url).port);
  };
  await launch(0);
  srv.restart = async () => {
    await stop(srv.child);
    await launch(srv.port);
  };
  srv.stop = async () => {
    await stop(srv.child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return srv;
}

// ---- the PEP 694 flow -------------------------------------------------------------------------

async function api(method, url, token, body) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
const META = { 'api-version': '2.0' };
let projectSeq = 0;

/**
 * Creates a publishing session for a new project each time (a first release's session reserves
 * its name, so sessions of one new project cannot be open side by side). `release` is the
 * `<name>-<version>` prefix of the file names.
 */
async function createSession(srv) {
  const name = `benchpkg${projectSeq++}`;
  const session = await api('POST', srv.url, srv.token, { meta: META, name, version: '1.0' });
  return { session, release: `${name}-1.0` };
}
const createFile = (srv, session, filename, size, sha256, mechanism) =>
  api('POST', session.links.upload, srv.token, { meta: META, filename, size, hashes: { sha256 }, mechanism });

/** Creates a publishing session and one file upload session (an sdist) in it. */
async function prepareOne(srv, mechanism, bytes, sha256) {
  const { session, release } = await createSession(srv);
  const file = await createFile(srv, session, `${release}.tar.gz`, bytes, sha256, mechanism);
  return { session, file };
}

/** Completes a file upload session; waits out `processing` (deferred verification). */
async function complete(srv, file, pollMs = 10) {
  let doc = await api('POST', file.links.complete, srv.token, { meta: META });
  while (doc.status === 'processing') {
    await new Promise((r) => setTimeout(r, pollMs));
    doc = await api('GET', file.links['file-upload-session'], srv.token);
  }
  if (doc.status !== 'completed') throw new Error(`completion: ${JSON.stringify(doc)}`);
  return doc;
}

/** Publishes a session; resolves with the milliseconds it took. */
async function publish(srv, session) {
  const t0 = now();
  await api('POST', session.links.publish, srv.token, { meta: META });
  return since(t0) * 1000;
}

/** Deletes the published and staged blobs of a data dir (nothing reads them again), to keep the page cache and disk clean. */
function dropBlobs(dataDir, dir = join(dataDir, 'blobs')) {
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) unlinkSync(p);
    }
  };
  walk(dir);
}

// ---- mechanisms, their clients and their raw peers ---------------------------------------------

async function createRawTusUpload(base, bytes) {
  const res = await fetch(`${base}/files`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes) } });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`raw tus creation: ${res.status}`);
  return new URL(res.headers.get('location'), base).href;
}

/**
 * curl -T POSTing the file to `file_url`: a client nobody here wrote, for the same rows with
 * another client than our half (issue #15). Its CPU (bash `times`) is returned as `childCpu`,
 * which the row adds to the client's.
 */
async function curlPost(map, path, auth) {
  const r = await bash(
    'curl -sS -f -X POST -T "$FILE" -H "Authorization: $AUTH" -H "Content-Type: application/octet-stream" -H "Expect:" "$URL" -o /dev/null',
    { FILE: path, AUTH: auth ?? '', URL: map.file_url },
  );
  return { childCpu: r.cpu };
}

const MECHANISMS = {
  'http-post-bytes': {
    section: 'http-post-bytes',
    identifier: 'http-post-bytes',
    raws: [{ key: 'raw-http', mode: 'http', label: 'raw node http → sha256 → file' }],
    send: (map, file, auth) => uploadHttpPostBytes({ instructions: map, body: file, authorization: auth }),
    // The same rows again with curl as the client (BENCH_CURL=0 leaves them out).
    curl: curlPost,
    rawMap: async (raw) => ({ identifier: 'http-post-bytes', file_url: `${raw.base}/` }),
  },
  tus: {
    section: 'tus',
    identifier: 'vnd-bench-tus',
    raws: [
      { key: 'raw-tus-stream', mode: 'tus-stream', label: 'raw @tus/server + @tus/file-store, hashing in the stream' },
      { key: 'raw-tus-reread', mode: 'tus-reread', label: 'raw @tus/server + @tus/file-store, re-reading the file to hash it' },
    ],
    send: (map, file, auth) => uploadTus({ instructions: map, body: file, authorization: auth }),
    rawMap: async (raw, bytes) => ({ upload_url: await createRawTusUpload(raw.base, bytes), upload_length: bytes }),
  },
  // The IETF draft (interop 8) through its client half. No raw peer exists (no other Node server
  // implements the draft): its figure is set against vnd-bench-tus's, measured in the same run.
  resumable: {
    section: 'resumable',
    identifier: 'vnd-bench-resumable-i8',
    raws: [],
    send: (map, file, auth) => uploadResumable({ instructions: map, body: file, authorization: auth }),
  },
  multipart: {
    section: 'multipart',
    identifier: 'vnd-bench-multipart',
    raws: [{ key: 'raw-busboy', mode: 'busboy', label: 'raw node http → busboy → sha256 → file' }],
    send: (map, file, auth) => uploadMultipart({ instructions: map, body: file, authorization: auth }),
    rawMap: async (raw) => ({ identifier: 'vnd-bench-multipart', file_url: `${raw.base}/` }),
  },
  // Not a mechanism: the legacy upload API (issue #16), one POST that streams, verifies and publishes.
  legacy: {
    section: 'legacy',
    identifier: 'legacy /legacy/',
    raws: [{ key: 'raw-busboy', mode: 'busboy', label: 'raw node http → busboy → sha256 → file' }],
    send: (map, path, auth) => sendLegacyForm(map.url, path, auth, map),
    rawMap: async (raw, _bytes, file) => ({ url: `${raw.base}/`, size: file.size, sha256: file.sha256 }),
  },
};

/**
 * A legacy upload (`twine upload`'s request): the fields, then the file streamed from disk in
 * 1 MiB reads (as the client halves read), then the closing delimiter, with a Content-Length. The
 * same client for our /legacy/ and the raw busboy peer (which ignores the fields).
 */
let legacyReleases = 0;
function sendLegacyForm(url, path, auth, { size, sha256 }) {
  const version = `1.0.${++legacyReleases}`;
  const filename = `bench_legacy-${version}.tar.gz`;
  const boundary = `bench-legacy-${randomBytes(8).toString('hex')}`;
  const fields = {
    ':action': 'file_upload',
    protocol_version: '1',
    metadata_version: '2.1',
    name: 'bench-legacy',
    version,
    filetype: 'sdist',
    pyversion: 'source',
    sha256_digest: sha256,
  };
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') +
      `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          authorization: auth,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + size + tail.length),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode < 300 ? resolve() : reject(new Error(`legacy POST ${url}: ${res.statusCode} ${res.statusMessage}`)),
        );
      },
    );
    req.on('error', reject);
    req.write(head);
    const source = createReadStream(path, { highWaterMark: MiB });
    source.on('error', reject);
    source.on('end', () => req.end(tail));
    source.pipe(req, { end: false });
  });
}

/** One upload through the full flow (session → file session → execute → complete → publish). */
async function oursOnce(srv, mech, file, bytes, send = mech.send) {
  if (mech.section === 'legacy') return legacyOnce(srv, mech, file, bytes);
  const { session, file: fs } = await prepareOne(srv, mech.identifier, bytes, file.sha256);
  let completeMs;
  // With S3 blobs the object store's CPU (s3rver) is part of the server's.
  const m = withChildCpu(
    await measure([srv.child.pid, ...(srv.extraPids ?? [])], async () => {
      const sent = await send(fs.mechanism, file.path, srv.auth);
      const t1 = now();
      await complete(srv, fs);
      completeMs = since(t1) * 1000;
      return { childCpu: sent?.childCpu ?? 0 };
    }),
  );
  const publishMs = await publish(srv, session);
  dropBlobs(srv.dataDir);
  srv.dropExtra?.();
  return {
    ...m,
    mbps: mbps(bytes, m.seconds),
    cpuPerGB: m.serverCpu / (bytes / GB),
    clientCpuPerGB: m.clientCpu / (bytes / GB),
    completeMs,
    publishMs,
  };
}

/** One legacy upload (one POST: the form streamed, verified and published) to our /legacy/. */
async function legacyOnce(srv, mech, file, bytes) {
  const map = { url: new URL('/legacy/', srv.url).href, size: file.size, sha256: file.sha256 };
  const m = await measure([srv.child.pid], () => mech.send(map, file.path, srv.auth));
  dropBlobs(srv.dataDir);
  return { ...m, mbps: mbps(bytes, m.seconds), cpuPerGB: m.serverCpu / (bytes / GB), clientCpuPerGB: m.clientCpu / (bytes / GB) };
}

/** A client in its own process (curl): its CPU counts as the client's, not as other processes' load. */
function withChildCpu(m) {
  const childCpu = m.childCpu ?? 0;
  return { ...m, clientCpu: m.clientCpu + childCpu, otherLoad: Math.max(0, m.otherLoad - childCpu / (m.seconds * cores)) };
}

async function rawOnce(raw, mech, file, bytes, auth, send = mech.send) {
  const map = await mech.rawMap(raw, bytes, file);
  const m = withChildCpu(
    await measure([raw.child.pid], async () => {
      const sent = await send(map, file.path, auth);
      return { childCpu: sent?.childCpu ?? 0 };
    }),
  );
  return { ...m, mbps: mbps(bytes, m.seconds), cpuPerGB: m.serverCpu / (bytes / GB), clientCpuPerGB: m.clientCpu / (bytes / GB) };
}

/** One untimed 8 MiB upload to each server, so that no timed run pays for a cold process (JIT, first queries). */
let warmFile;
async function warmUp(srv, raws, mech) {
  warmFile ??= await makeFile(8 * MiB, 'warm');
  await oursOnce(srv, mech, warmFile, warmFile.size);
  for (const raw of raws) await rawOnce(raw, mech, warmFile, warmFile.size, srv.auth);
}

/** Per-run ratios of paired runs (run i of a against run i of b). */
const paired = (a, b, key) => stats(a.map((x, i) => x[key] / b[i]?.[key]));
const summarize = (rs) => ({
  mbps: stats(rs.map((r) => r.mbps)),
  cpuPerGB: stats(rs.map((r) => r.cpuPerGB)),
  clientCpuPerGB: stats(rs.map((r) => r.clientCpuPerGB)),
  otherLoad: stats(rs.map((r) => r.otherLoad)),
  serverMain: stats(rs.map((r) => r.serverMain)),
  serverThread: stats(rs.map((r) => r.serverThread)),
  clientMain: stats(rs.map((r) => r.clientMain)),
});

async function uploadSection(name, file, bytes) {
  const mech = MECHANISMS[name];
  const srv = await startOurs(`${name}-${bytes}`);
  const raws = await Promise.all(mech.raws.map(async (r) => ({ ...r, ...(await startRaw(r.mode)) })));
  // With curl as the client too: each peer again as "<peer>+curl".
  const curl = mech.curl && env('BENCH_CURL', '1') !== '0' ? mech.curl : undefined;
  const base = ['ours', ...raws.map((r) => r.key)];
  const peers = [...base, ...(curl ? base.map((p) => `${p}+curl`) : [])];
  await warmUp(srv, raws, mech);
  const results = Object.fromEntries(peers.map((p) => [p, []]));
  for (let i = 0; i < runs; i++) {
    for (const p of rotate(peers, i)) {
      const viaCurl = p.endsWith('+curl');
      const key = viaCurl ? p.slice(0, -'+curl'.length) : p;
      const send = viaCurl ? curl : mech.send;
      const raw = raws.find((r) => r.key === key);
      results[p].push(raw ? await rawOnce(raw, mech, file, bytes, srv.auth, send) : await oursOnce(srv, mech, file, bytes, send));
    }
  }
  const entry = {
    mechanism: mech.identifier,
    section: name,
    sizeMiB: bytes / MiB,
    ours: {
      ...summarize(results.ours),
      peakRssMB: procUsage(srv.child.pid).peakRssMB,
      completeMs: stats(results.ours.map((r) => r.completeMs)),
      publishMs: stats(results.ours.map((r) => r.publishMs)),
      runs: results.ours,
    },
    raws: raws.map((r) => ({
      key: r.key,
      label: r.label,
      ...summarize(results[r.key]),
      peakRssMB: procUsage(r.child.pid).peakRssMB,
      ratio: paired(results.ours, results[r.key], 'mbps'),
      cpuRatio: paired(results.ours, results[r.key], 'cpuPerGB'),
      runs: results[r.key],
    })),
    // The same rows with curl -T as the client, and what changing the client did to each server's figure.
    curl: curl && {
      ours: { ...summarize(results['ours+curl']), runs: results['ours+curl'] },
      halfOverCurl: paired(results.ours, results['ours+curl'], 'mbps'),
      raws: raws.map((r) => ({
        key: r.key,
        label: r.label,
        ...summarize(results[`${r.key}+curl`]),
        ratio: paired(results['ours+curl'], results[`${r.key}+curl`], 'mbps'),
        cpuRatio: paired(results['ours+curl'], results[`${r.key}+curl`], 'cpuPerGB'),
        halfOverCurl: paired(results[r.key], results[`${r.key}+curl`], 'mbps'),
        runs: results[`${r.key}+curl`],
      })),
    },
  };
  await srv.stop();
  await Promise.all(raws.map((r) => stop(r.child)));
  return entry;
}

/**
 * S3 blobs (@pep694/blobs-s3 on s3rver, in its own process): http-post-bytes uploads of
 * `file` into our host with S3 blobs and with filesystem blobs, side by side (runs alternate);
 * then "publishing N MiB ÷ 1 KiB" on S3: completion (where the host moves the verified blob from
 * staging/ to files/, a pointer rewrite on S3) and publish (a database step) of a big and a 1 KiB
 * file. s3rver's CPU counts as the S3 host's.
 */
/**
 * S3 (s3rver) next to the filesystem: http-post-bytes uploads through the full flow, and
 * completing and publishing a big file ÷ a 1 KiB file on S3.
 *
 * Completion and publish are timed the same way for both sizes: per run, the big file and three
 * 1 KiB files are each uploaded into a publishing session of their own, then (after a `sync`)
 * completed one after the other in a rotating order, then published likewise. So every step is
 * taken after the same upload history, and the first step after the uploads (which may pay for
 * them) is the big file's in one run of every four and a 1 KiB file's in the
 * rest. s3rver's request log (s3rver.mjs) gives what each step asked of it: requests, bytes,
 * server-side copies, and the milliseconds s3rver took to answer them.
 */
async function s3Section(file, bytes, bigFile) {
  const mech = MECHANISMS['http-post-bytes'];
  const { child: s3child, value } = await startChild(join(here, 's3rver.mjs'), [], 'S3ENV');
  const s3 = JSON.parse(Buffer.from(value, 'base64url').toString());
  const fsSrv = await startOurs('s3-fs');
  const s3Srv = await startOurs('s3', { env: { ...s3.env, BENCH_BLOBS: s3.env.PEP694_BLOBS } });
  s3Srv.extraPids = [s3child.pid];
  // Nothing reads a run's objects again: s3rver's files go, as dropBlobs drops the filesystem's.
  s3Srv.dropExtra = () => dropBlobs(undefined, join(s3.directory, s3.bucket));
  /** What s3rver answered since the last call: requests, bytes, copies, its milliseconds. */
  const s3log = async () => {
    const { requests, gcMs } = await (await fetch(s3.log)).json();
    return {
      requests: requests.length,
      ms: requests.reduce((t, r) => t + r.ms, 0),
      copies: requests.filter((r) => r.copy).length,
      bytes: requests.reduce((t, r) => t + r.bytesIn + r.bytesOut, 0),
      // CompleteMultipartUpload: s3rver copies the parts into one file (AWS S3 does not).
      assembleMs: requests.filter((r) => r.method === 'POST' && r.query.includes('uploadId')).reduce((t, r) => t + r.ms, 0),
      gcMs,
    };
  };
  const peers = { fs: fsSrv, s3: s3Srv };
  warmFile ??= await makeFile(8 * MiB, 'warm');
  for (const srv of Object.values(peers)) await oursOnce(srv, mech, warmFile, warmFile.size);
  const results = { fs: [], s3: [] };
  for (let i = 0; i < runs; i++) {
    for (const p of rotate(['fs', 's3'], i)) {
      if (p === 's3') await s3log();
      const r = await oursOnce(peers[p], mech, file, bytes);
      if (p === 's3') {
        const l = await s3log();
        // s3rver's assembly runs after the last byte, before the upload's answer: without it the
        // upload would take that much less (an estimate of a store that assembles in constant time).
        r.assembleMs = l.assembleMs;
        r.hostCpuPerGB = r.cpuByPid[0] / (bytes / GB);
        r.mbpsWithoutAssembly = mbps(bytes, r.seconds - l.assembleMs / 1000);
      }
      results[p].push(r);
    }
  }

  const tiny = await makeFile(1024, 's3-tiny');
  const steps = [];
  const timed = async (fn) => {
    await s3log();
    const t0 = now();
    await fn();
    const ms = since(t0) * 1000;
    const l = await s3log();
    return { ms, s3: l, msWithoutS3: ms - l.ms };
  };
  for (let i = 0; i < runs; i++) {
    const items = [bigFile, tiny, tiny, tiny].map((f) => ({ f, big: f === bigFile }));
    for (const item of items) {
      Object.assign(item, await prepareOne(s3Srv, mech.identifier, item.f.size, item.f.sha256));
      await s3log();
      await mech.send(item.file.mechanism, item.f.path, s3Srv.auth);
      if (item.big) item.uploadAssembleMs = (await s3log()).assembleMs;
    }
    const order = rotate(items, i);
    // s3rver shares the disk with the host's SQLite (a real bucket does not): without a sync, the
    // first SQLite fsync after a big upload waits for s3rver's writeback of the object it assembled.
    spawnSync('sync');
    for (const [k, item] of order.entries()) {
      item.position = k;
      item.complete = await timed(() => complete(s3Srv, item.file));
    }
    spawnSync('sync');
    for (const item of order) item.publish = await timed(() => publish(s3Srv, item.session));
    for (const item of items)
      steps.push({
        big: item.big,
        position: item.position,
        complete: item.complete,
        publish: item.publish,
        uploadAssembleMs: item.uploadAssembleMs,
      });
    dropBlobs(s3Srv.dataDir);
    s3Srv.dropExtra();
  }
  rmSync(tiny.path, { force: true });
  const pick = (big, fn, where = () => true) => stats(steps.filter((s) => s.big === big && where(s)).map(fn));
  const step = (big, key) => ({
    ms: pick(big, (s) => s[key].ms),
    s3Ms: pick(big, (s) => s[key].s3.ms),
    msWithoutS3: pick(big, (s) => s[key].msWithoutS3),
    s3Requests: pick(big, (s) => s[key].s3.requests),
    s3Copies: pick(big, (s) => s[key].s3.copies),
    s3Bytes: pick(big, (s) => s[key].s3.bytes),
  });
  const first = (s) => s.position === 0;
  const later = (s) => s.position > 0;
  const entry = {
    sizeMiB: bytes / MiB,
    fs: { ...summarize(results.fs), peakRssMB: procUsage(fsSrv.child.pid).peakRssMB, runs: results.fs },
    s3: {
      ...summarize(results.s3),
      peakRssMB: procUsage(s3Srv.child.pid).peakRssMB,
      s3rverPeakRssMB: procUsage(s3child.pid).peakRssMB,
      assembleMs: stats(results.s3.map((r) => r.assembleMs)),
      hostCpuPerGB: stats(results.s3.map((r) => r.hostCpuPerGB)),
      mbpsWithoutAssembly: stats(results.s3.map((r) => r.mbpsWithoutAssembly)),
      runs: results.s3,
    },
    ratio: paired(results.s3, results.fs, 'mbps'),
    ratioWithoutAssembly: paired(
      results.s3.map((r) => ({ mbps: r.mbpsWithoutAssembly })),
      results.fs,
      'mbps',
    ),
    bigMiB: bigFile.size / MiB,
    assembleBigMs: pick(true, (s) => s.uploadAssembleMs),
    complete: { big: step(true, 'complete'), tiny: step(false, 'complete') },
    publish: { big: step(true, 'publish'), tiny: step(false, 'publish') },
    // The aftermath of the uploads: the first completion after them, whichever file it is, next to the later ones.
    completeByPosition: {
      bigFirst: pick(true, (s) => s.complete.ms, first),
      bigLater: pick(true, (s) => s.complete.ms, later),
      tinyFirst: pick(false, (s) => s.complete.ms, first),
      tinyLater: pick(false, (s) => s.complete.ms, later),
    },
    steps,
  };
  const ratio = (a, b) => a.median / b.median;
  entry.completeRatio = ratio(entry.complete.big.ms, entry.complete.tiny.ms);
  entry.completeRatioWithoutS3 = ratio(entry.complete.big.msWithoutS3, entry.complete.tiny.msWithoutS3);
  entry.publishRatio = ratio(entry.publish.big.ms, entry.publish.tiny.ms);
  await fsSrv.stop();
  await s3Srv.stop();
  await stop(s3child);
  return entry;
}

/**
 * S3 presigned parts against http-post-bytes, into the same S3 backend (one host with S3 blobs,
 * s3rver in its own process), runs alternating. The host's CPU is taken apart: during the
 * transfer (for presigned parts: the parts route only; the bytes go from the client to s3rver)
 * and from `POST complete` to `completed` (for presigned parts: CompleteMultipartUpload and the
 * verification read of the whole object; for http-post-bytes: the move). s3rver's CPU is shown
 * on its own: it is what the bucket spends, which a real S3 spends on its own machines.
 */
async function s3PresignedSection(file, bytes) {
  const { child: s3child, value } = await startChild(join(here, 's3rver.mjs'), [], 'S3ENV');
  const s3 = JSON.parse(Buffer.from(value, 'base64url').toString());
  const srv = await startOurs('s3-presigned', { env: { ...s3.env, BENCH_BLOBS: s3.env.PEP694_BLOBS } });
  srv.dropExtra = () => dropBlobs(undefined, join(s3.directory, s3.bucket));
  const mechs = {
    'http-post-bytes': MECHANISMS['http-post-bytes'],
    presigned: {
      identifier: 'vnd-bench-s3multipart-presigned',
      send: (map, path, auth) => uploadS3Presigned({ instructions: map, body: path, authorization: auth }),
    },
  };
  const once = async (mech, f, size) => {
    const { session, file: fs } = await prepareOne(srv, mech.identifier, size, f.sha256);
    const cpu = () => [procUsage(srv.child.pid).cpu, procUsage(s3child.pid).cpu];
    const [h0, s0] = cpu();
    const c0 = selfCpu();
    const t0 = now();
    await mech.send(fs.mechanism, f.path, srv.auth);
    const [h1] = cpu();
    const t1 = now();
    // Polled every 250 ms, as a client would (the shared complete() polls every 10 ms, which on a
    // verification of a minute would put thousands of status requests in the host's CPU).
    await complete(srv, fs, 250);
    const [h2, s2] = cpu();
    const seconds = since(t0);
    const completeMs = since(t1) * 1000;
    const clientCpu = selfCpu() - c0;
    await publish(srv, session);
    dropBlobs(srv.dataDir);
    srv.dropExtra();
    const perGB = (cpuSeconds) => cpuSeconds / (size / GB);
    return {
      seconds,
      mbps: mbps(size, seconds),
      completeMs,
      hostCpuPerGB: perGB(h2 - h0),
      hostTransferCpuPerGB: perGB(h1 - h0),
      hostCompleteCpuPerGB: perGB(h2 - h1),
      s3rverCpuPerGB: perGB(s2 - s0),
      clientCpuPerGB: perGB(clientCpu),
    };
  };
  warmFile ??= await makeFile(8 * MiB, 'warm');
  for (const mech of Object.values(mechs)) await once(mech, warmFile, warmFile.size);
  const results = { 'http-post-bytes': [], presigned: [] };
  for (let i = 0; i < runs; i++) for (const k of rotate(Object.keys(mechs), i)) results[k].push(await once(mechs[k], file, bytes));
  const sum = (rs) => ({
    mbps: stats(rs.map((r) => r.mbps)),
    completeMs: stats(rs.map((r) => r.completeMs)),
    hostCpuPerGB: stats(rs.map((r) => r.hostCpuPerGB)),
    hostTransferCpuPerGB: stats(rs.map((r) => r.hostTransferCpuPerGB)),
    hostCompleteCpuPerGB: stats(rs.map((r) => r.hostCompleteCpuPerGB)),
    s3rverCpuPerGB: stats(rs.map((r) => r.s3rverCpuPerGB)),
    clientCpuPerGB: stats(rs.map((r) => r.clientCpuPerGB)),
    runs: rs,
  });
  const entry = {
    sizeMiB: bytes / MiB,
    presigned: sum(results.presigned),
    httpPostBytes: sum(results['http-post-bytes']),
    hostCpuRatio: paired(results.presigned, results['http-post-bytes'], 'hostCpuPerGB'),
    peakRssMB: procUsage(srv.child.pid).peakRssMB,
  };
  await srv.stop();
  await stop(s3child);
  return entry;
}

/** tus: the hash state lost by a restart between PATCHes, so completion re-reads the file (deferred). */
async function deferredSection(file, bytes) {
  const mech = MECHANISMS.tus;
  const srv = await startOurs(`tus-deferred-${bytes}`);
  const results = { ours: [], openssl: [], node: [], node1m: [] };
  const opensslOnce = () => {
    const t0 = now();
    const r = spawnSync('openssl', ['dgst', '-sha256', '-r', file.path], { encoding: 'utf8' });
    const s = since(t0);
    if (r.status !== 0 || !r.stdout.startsWith(file.sha256)) throw new Error(`openssl: ${r.status} ${r.stderr}`);
    results.openssl.push({ seconds: s, mbps: mbps(bytes, s) });
  };
  // node's default 64 KiB reads, and 1 MiB reads (what our blob store reads with: FILE_IO_CHUNK).
  const nodeRead = async (highWaterMark, into) => {
    const h = createHash('sha256');
    const t0 = now();
    await pipeline(
      createReadStream(file.path, { highWaterMark }),
      new Writable({
        highWaterMark,
        write(c, _e, cb) {
          h.update(c);
          cb();
        },
      }),
    );
    const s = since(t0);
    if (h.digest('hex') !== file.sha256) throw new Error('node re-read: wrong sha256');
    into.push({ seconds: s, mbps: mbps(bytes, s) });
  };
  const nodeOnce = async () => {
    await nodeRead(64 * 1024, results.node);
    await nodeRead(MiB, results.node1m);
  };
  let peakRssMB = 0;
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      opensslOnce();
      await nodeOnce();
    }
    const { session, file: fs } = await prepareOne(srv, mech.identifier, bytes, file.sha256);
    const half = Math.floor(bytes / 2);
    await patchRange(fs.mechanism.upload_url, file.path, 0, half, srv.auth);
    await srv.restart(); // the in-stream hash state is gone with the process
    await mech.send(fs.mechanism, file.path, srv.auth); // resumes at `half`
    const m = await measure([srv.child.pid], () => complete(srv, fs));
    results.ours.push({ ...m, mbps: mbps(bytes, m.seconds), cpuPerGB: m.serverCpu / (bytes / GB) });
    peakRssMB = Math.max(peakRssMB, procUsage(srv.child.pid).peakRssMB);
    await publish(srv, session);
    dropBlobs(srv.dataDir);
    if (i % 2 === 1) {
      await nodeOnce();
      opensslOnce();
    }
  }
  await srv.stop();
  return {
    sizeMiB: bytes / MiB,
    ours: {
      seconds: stats(results.ours.map((r) => r.seconds)),
      cpuPerGB: stats(results.ours.map((r) => r.cpuPerGB)),
      otherLoad: stats(results.ours.map((r) => r.otherLoad)),
      peakRssMB,
    },
    openssl: { seconds: stats(results.openssl.map((r) => r.seconds)) },
    node: { seconds: stats(results.node.map((r) => r.seconds)) },
    node1m: { seconds: stats(results.node1m.map((r) => r.seconds)) },
    ratioToOpenssl: stats(results.ours.map((r) => r.seconds)).median / stats(results.openssl.map((r) => r.seconds)).median,
    ratioToNode: stats(results.ours.map((r) => r.seconds)).median / stats(results.node.map((r) => r.seconds)).median,
    ratioToNode1m: stats(results.ours.map((r) => r.seconds)).median / stats(results.node1m.map((r) => r.seconds)).median,
    runs: results,
  };
}

/** A raw tus PATCH of bytes [start, end) of a file. */
function patchRange(url, path, start, end, auth) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PATCH',
        headers: {
          authorization: auth,
          'tus-resumable': '1.0.0',
          'upload-offset': String(start),
          'content-type': 'application/offset+octet-stream',
          'content-length': String(end - start),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`PATCH ${url}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    pipeline(createReadStream(path, { start, end: end - 1 }), req).catch(reject);
  });
}

/** `concurrency` simultaneous uploads of `bytes` each, per mechanism, against its (in-stream) raw peer. */
async function concurrencySection(name, file, bytes) {
  const mech = MECHANISMS[name];
  const srv = await startOurs(`conc-${name}`);
  const r0 = mech.raws[0];
  const raw = { ...r0, ...(await startRaw(r0.mode)) };
  await warmUp(srv, [raw], mech);
  const total = bytes * concurrency;
  const results = { ours: [], raw: [] };
  const oursRun = async () => {
    const prepared = [];
    for (let k = 0; k < concurrency; k++) prepared.push(await prepareOne(srv, mech.identifier, bytes, file.sha256));
    const m = await measure([srv.child.pid], () =>
      Promise.all(
        prepared.map(async ({ file: fs }) => {
          await mech.send(fs.mechanism, file.path, srv.auth);
          await complete(srv, fs);
        }),
      ),
    );
    for (const { session } of prepared) await publish(srv, session);
    dropBlobs(srv.dataDir);
    results.ours.push({ ...m, mbps: mbps(total, m.seconds), cpuPerGB: m.serverCpu / (total / GB) });
  };
  const rawRun = async () => {
    const maps = [];
    for (let k = 0; k < concurrency; k++) maps.push(await mech.rawMap(raw, bytes));
    const m = await measure([raw.child.pid], () => Promise.all(maps.map((map) => mech.send(map, file.path, srv.auth))));
    results.raw.push({ ...m, mbps: mbps(total, m.seconds), cpuPerGB: m.serverCpu / (total / GB) });
  };
  for (let i = 0; i < runs; i++) {
    for (const run of rotate([rawRun, oursRun], i)) await run();
  }
  const entry = {
    mechanism: mech.identifier,
    rawLabel: raw.label,
    uploads: concurrency,
    sizeMiB: bytes / MiB,
    ours: {
      mbps: stats(results.ours.map((r) => r.mbps)),
      cpuPerGB: stats(results.ours.map((r) => r.cpuPerGB)),
      otherLoad: stats(results.ours.map((r) => r.otherLoad)),
      peakRssMB: procUsage(srv.child.pid).peakRssMB,
    },
    raw: {
      mbps: stats(results.raw.map((r) => r.mbps)),
      cpuPerGB: stats(results.raw.map((r) => r.cpuPerGB)),
      otherLoad: stats(results.raw.map((r) => r.otherLoad)),
      peakRssMB: procUsage(raw.child.pid).peakRssMB,
    },
    ratio: paired(results.ours, results.raw, 'mbps'),
    runs: results,
  };
  await srv.stop();
  await stop(raw.child);
  return entry;
}

/** The raw http pipeline in a bare process, in one that imported our host's modules, in one that also runs it, and our host. */
async function preloadSection(file, bytes) {
  const mech = MECHANISMS['http-post-bytes'];
  const srv = await startOurs(`preload-${bytes}`);
  const variants = [
    { key: 'bare', label: 'raw node http, bare process' },
    { key: 'import', label: 'raw node http, process imported @pep694/server + plugins', env: { BENCH_PRELOAD: 'import' } },
    { key: 'server', label: 'raw node http, process also runs our host (idle)', env: { BENCH_PRELOAD: 'server' } },
  ];
  const raws = await Promise.all(variants.map(async (v) => ({ ...v, ...(await startRaw('http', v.env)) })));
  // With curl as the client too: each peer again as "<peer>+curl".
  const curl = mech.curl && env('BENCH_CURL', '1') !== '0' ? mech.curl : undefined;
  const base = ['ours', ...raws.map((r) => r.key)];
  const peers = [...base, ...(curl ? base.map((p) => `${p}+curl`) : [])];
  await warmUp(srv, raws, mech);
  const results = Object.fromEntries(peers.map((p) => [p, []]));
  for (let i = 0; i < runs; i++) {
    for (const p of rotate(peers, i)) {
      const viaCurl = p.endsWith('+curl');
      const key = viaCurl ? p.slice(0, -'+curl'.length) : p;
      const send = viaCurl ? curl : mech.send;
      const raw = raws.find((r) => r.key === key);
      results[p].push(raw ? await rawOnce(raw, mech, file, bytes, srv.auth, send) : await oursOnce(srv, mech, file, bytes, send));
    }
  }
  const row = (key, label, pid) => ({
    key,
    label,
    ...summarize(results[key]),
    peakRssMB: procUsage(pid).peakRssMB,
    ratioToBare: paired(results[key], results.bare, 'mbps'),
    cpuRatioToBare: paired(results[key], results.bare, 'cpuPerGB'),
  });
  const entry = {
    sizeMiB: bytes / MiB,
    rows: [...raws.map((r) => row(r.key, r.label, r.child.pid)), row('ours', 'ours: http-post-bytes, full flow', srv.child.pid)],
  };
  await srv.stop();
  await Promise.all(raws.map((r) => stop(r.child)));
  return entry;
}

// ---- control plane ----------------------------------------------------------------------------

function cannon(pid, opts, duration = controlSeconds) {
  return measure([pid], async () => {
    const r = await autocannon({ connections, duration, ...opts });
    return { cannon: r };
  }).then((m) => {
    const r = m.cannon;
    const requests = r.requests.total;
    return {
      rps: requests / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      requests,
      failures: r.non2xx + r.errors + r.timeouts,
      non2xx: r.non2xx,
      errors: r.errors + r.timeouts,
      cpuPerKReq: ((m.serverCpu * 1000) / requests) * 1000, // server CPU ms per 1000 requests
      otherLoad: m.otherLoad,
    };
  });
}

/**
 * `connections` keep-alive loops of one request for `duration` seconds, measured like `cannon`,
 * with node:http as the client: autocannon's parser waits for the body that a HEAD response's
 * Content-Length announces, so it cannot time HEAD, and figures compared with each other must come
 * from one client. A response whose status is not `expect` is a failure.
 */
function httpLoop(pid, { url, method = 'GET', headers, expect = 200 }, duration = controlSeconds) {
  return measure([pid], async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const latencies = [];
    let non2xx = 0;
    let errors = 0;
    const t0 = now();
    const deadline = Date.now() + duration * 1000;
    const one = () =>
      new Promise((resolve) => {
        const started = now();
        const req = request(url, { method, headers, agent }, (res) => {
          if (res.statusCode !== expect) non2xx += 1;
          res.resume();
          res.on('end', () => {
            latencies.push(since(started) * 1000);
            resolve();
          });
        });
        req.on('error', () => {
          errors += 1;
          resolve();
        });
        req.end();
      });
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (Date.now() < deadline) await one();
      }),
    );
    agent.destroy();
    const seconds = since(t0);
    const l = stats(latencies);
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      loop: {
        requests: latencies.length + errors,
        seconds,
        non2xx,
        errors,
        p50: l.median,
        p99: sorted[Math.floor(sorted.length * 0.99)] ?? NaN,
      },
    };
  }).then((m) => ({
    rps: m.loop.requests / m.loop.seconds,
    p50: m.loop.p50,
    p99: m.loop.p99,
    requests: m.loop.requests,
    failures: m.loop.non2xx + m.loop.errors,
    non2xx: m.loop.non2xx,
    errors: m.loop.errors,
    cpuPerKReq: ((m.serverCpu * 1000) / m.loop.requests) * 1000,
    otherLoad: m.otherLoad,
  }));
}

async function controlSection(bigFile) {
  const srv = await startOurs('control');
  const express = await startRaw('express');
  const tiny = await makeFile(1024, 'tiny');
  // The session whose status is fetched holds one file, like the express route's document.
  const { session: statusSession, release: statusRelease } = await createSession(srv);
  await createFile(srv, statusSession, `${statusRelease}.tar.gz`, tiny.size, tiny.sha256, 'http-post-bytes');
  const jsonHeaders = { authorization: srv.auth, 'content-type': 'application/vnd.pypi.upload.v2+json' };
  let seq = 0;
  const createBody = (release) => () =>
    JSON.stringify({
      meta: META,
      filename: `${release}-${++seq}-py3-none-any.whl`,
      size: 1024,
      hashes: { sha256: tiny.sha256 },
      mechanism: 'http-post-bytes',
    });
  const targets = {
    'ours-status': (d) => cannon(srv.child.pid, { url: statusSession.links.session, headers: { authorization: srv.auth } }, d),
    'express-status': (d) => cannon(express.child.pid, { url: `${express.base}/status` }, d),
    'ours-create-file': async (d) => {
      // A fresh publishing session per run: file upload sessions pile up in it for the run's duration.
      const { session, release } = await createSession(srv);
      const body = createBody(release);
      return cannon(
        srv.child.pid,
        {
          url: session.links.upload,
          method: 'POST',
          headers: jsonHeaders,
          requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: body() }) }],
        },
        d,
      );
    },
    'express-post-json': (d) => {
      const body = createBody('benchpkg-1.0');
      return cannon(
        express.child.pid,
        {
          url: `${express.base}/files`,
          method: 'POST',
          headers: jsonHeaders,
          requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: body() }) }],
        },
        d,
      );
    },
  };
  // Warm-up (JIT, connections), not recorded.
  for (const t of Object.values(targets)) await t(Math.min(1, controlSeconds));
  const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    const pairs = [
      ['ours-status', 'express-status'],
      ['ours-create-file', 'express-post-json'],
    ];
    for (const pair of pairs) for (const k of i % 2 === 0 ? pair : [...pair].reverse()) results[k].push(await targets[k]());
  }
  const route = (k) => ({
    rps: stats(results[k].map((r) => r.rps)),
    p50: stats(results[k].map((r) => r.p50)),
    p99: stats(results[k].map((r) => r.p99)),
    cpuPerKReq: stats(results[k].map((r) => r.cpuPerKReq)),
    otherLoad: stats(results[k].map((r) => r.otherLoad)),
    failures: results[k].reduce((s, r) => s + r.failures, 0),
  });
  const routes = Object.fromEntries(Object.keys(targets).map((k) => [k, route(k)]));

  // Publishing: a session of 100 small files; one 1 KiB file next to one big file (no bytes copied).
  const publish100 = [];
  const publishTiny = [];
  const publishBig = [];
  const uploadSmall = async (session, filename) => {
    const fs = await createFile(srv, session, filename, tiny.size, tiny.sha256, 'http-post-bytes');
    await MECHANISMS['http-post-bytes'].send(fs.mechanism, tiny.path, srv.auth);
    await complete(srv, fs);
  };
  for (let i = 0; i < runs; i++) {
    const { session, release } = await createSession(srv);
    const names = Array.from({ length: 100 }, (_, k) => `${release}-${k + 1}-py3-none-any.whl`);
    for (let k = 0; k < names.length; k += 8) await Promise.all(names.slice(k, k + 8).map((n) => uploadSmall(session, n)));
    publish100.push(await publish(srv, session));
    const one = async (f, into) => {
      const { session: s, file: fs } = await prepareOne(srv, 'http-post-bytes', f.size, f.sha256);
      await MECHANISMS['http-post-bytes'].send(fs.mechanism, f.path, srv.auth);
      await complete(srv, fs);
      into.push(await publish(srv, s));
      dropBlobs(srv.dataDir);
    };
    // Three 1 KiB publishes per big one (they are cheap), the big one at a rotating place.
    const order = rotate(
      [
        [bigFile, publishBig],
        [tiny, publishTiny],
        [tiny, publishTiny],
        [tiny, publishTiny],
      ],
      i,
    );
    for (const [f, into] of order) await one(f, into);
  }
  const entry = {
    connections,
    seconds: controlSeconds,
    routes,
    peakRssMB: procUsage(srv.child.pid).peakRssMB,
    statusRatio: stats(results['ours-status'].map((r, i) => r.rps / results['express-status'][i].rps)),
    createRatio: stats(results['ours-create-file'].map((r, i) => r.rps / results['express-post-json'][i].rps)),
    publish100Ms: stats(publish100),
    publishTinyMs: stats(publishTiny),
    publishBigMs: stats(publishBig),
    bigMiB: bigFile.size / MiB,
    publishRatio: stats(publishBig).median / stats(publishTiny).median,
    runs: results,
  };
  await srv.stop();
  await stop(express.child);
  return entry;
}

// ---- the control plane on PostgreSQL next to SQLite (issue #17) ------------------------------

/** CPU seconds of each process of a PostgreSQL cluster (pid → seconds): its postmaster and every process it forked. */
function clusterCpu(postmasterPid) {
  const out = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) !== postmasterPid && Number(fields[1]) !== postmasterPid) continue;
      out.set(entry, (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
    } catch {
      // the process ended
    }
  }
  return out;
}
/** CPU seconds a cluster used between two `clusterCpu` readings (a backend that exited in between loses its last share). */
const clusterCpuSince = (before, after) => [...after].reduce((sum, [pid, cpu]) => sum + cpu - (before.get(pid) ?? 0), 0);

/** Transactions rolled back in the cluster so far (all databases). */
async function pgRollbacks(pool) {
  const { rows } = await pool.query('SELECT sum(xact_rollback)::bigint AS n FROM pg_stat_database');
  return Number(rows[0].n);
}

/**
 * Status, create-file-session and publish on two hosts side by side, the same code and blobs
 * (files) but for the session store: SQLite in the data dir (WAL, group commit: every answer after an fsync), and
 * PostgreSQL 15 on loopback (a cluster of its own, fsync and synchronous_commit on: see
 * postgres.mjs). The hosts take turns going first. PostgreSQL's CPU (all its processes) is shown
 * next to the host's: with SQLite the database work is in the host process.
 */
async function controlPostgresSection() {
  const { child: pgChild, value } = await startChild(join(here, 'postgres.mjs'), [], 'PGENV', {}, { stdin: 'pipe' });
  pgChild.graceful = true;
  const pg = JSON.parse(Buffer.from(value, 'base64url').toString());
  const pgAdmin = new Pg.Pool({ connectionString: pg.url, max: 1 });
  const hosts = {};
  try {
    hosts.sqlite = await startOurs('control-sqlite');
    hosts.postgres = await startOurs('control-postgres', { env: { BENCH_DATABASE_URL: pg.url } });
    const names = Object.keys(hosts);
    const tiny = await makeFile(1024, 'tiny-pg');
    const targets = {};
    for (const [name, srv] of Object.entries(hosts)) {
      const { session, release } = await createSession(srv);
      await createFile(srv, session, `${release}.tar.gz`, tiny.size, tiny.sha256, 'http-post-bytes');
      const jsonHeaders = { authorization: srv.auth, 'content-type': 'application/vnd.pypi.upload.v2+json' };
      let seq = 0;
      // The database's CPU is measured around each run (PostgreSQL's processes are not the host's),
      // and its rolled-back transactions: SERIALIZABLE conflicts the store retries. Statistics
      // lag up to a second behind, and retries of the previous run's last requests go on after
      // autocannon stops, so each run starts after a pause of 2 s (the figure stays approximate).
      const withDb = async (run) => {
        if (name !== 'postgres') return { ...(await run()), dbCpuPerKReq: 0, rollbacksPerKReq: 0 };
        await new Promise((resolve) => setTimeout(resolve, 2000));
        const db0 = clusterCpu(pg.postmasterPid);
        const x0 = await pgRollbacks(pgAdmin);
        const r = await run();
        const db = clusterCpuSince(db0, clusterCpu(pg.postmasterPid));
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const rollbacks = (await pgRollbacks(pgAdmin)) - x0;
        return {
          ...r,
          dbCpuPerKReq: ((db * 1000) / r.requests) * 1000,
          rollbacksPerKReq: (rollbacks * 1000) / r.requests,
          otherLoad: Math.max(0, r.otherLoad - db / (controlSeconds * cores)),
        };
      };
      targets[name] = {
        status: (d) => withDb(() => cannon(srv.child.pid, { url: session.links.session, headers: { authorization: srv.auth } }, d)),
        create: async (d) => {
          const { session: s, release: rel } = await createSession(srv);
          const body = () =>
            JSON.stringify({
              meta: META,
              filename: `${rel}-${++seq}-py3-none-any.whl`,
              size: 1024,
              hashes: { sha256: tiny.sha256 },
              mechanism: 'http-post-bytes',
            });
          return withDb(() =>
            cannon(
              srv.child.pid,
              {
                url: s.links.upload,
                method: 'POST',
                headers: jsonHeaders,
                requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: body() }) }],
              },
              d,
            ),
          );
        },
      };
    }
    for (const name of names) for (const t of Object.values(targets[name])) await t(Math.min(1, controlSeconds));
    const results = Object.fromEntries(names.map((n) => [n, { status: [], create: [] }]));
    for (let i = 0; i < runs; i++)
      for (const route of ['status', 'create']) for (const n of rotate(names, i)) results[n][route].push(await targets[n][route]());

    // Publishing: a session of 100 files of 1 KiB (10 in quick mode, which only checks that it
    // runs), and sessions of one 1 KiB file (three per run).
    const manyFiles = quick ? 10 : 100;
    const published = Object.fromEntries(names.map((n) => [n, { p100: [], p1: [] }]));
    const uploadSmall = async (srv, session, filename) => {
      const fs = await createFile(srv, session, filename, tiny.size, tiny.sha256, 'http-post-bytes');
      await MECHANISMS['http-post-bytes'].send(fs.mechanism, tiny.path, srv.auth);
      await complete(srv, fs);
    };
    for (let i = 0; i < runs; i++) {
      for (const n of rotate(names, i)) {
        const srv = hosts[n];
        const { session, release } = await createSession(srv);
        const files = Array.from({ length: manyFiles }, (_, k) => `${release}-${k + 1}-py3-none-any.whl`);
        for (let k = 0; k < files.length; k += 8) await Promise.all(files.slice(k, k + 8).map((f) => uploadSmall(srv, session, f)));
        published[n].p100.push(await publish(srv, session));
        for (let k = 0; k < 3; k++) {
          const { session: s, release: rel } = await createSession(srv);
          await uploadSmall(srv, s, `${rel}.tar.gz`);
          published[n].p1.push(await publish(srv, s));
        }
        dropBlobs(srv.dataDir);
      }
    }
    rmSync(tiny.path, { force: true });
    const route = (rs) => ({
      rps: stats(rs.map((r) => r.rps)),
      p50: stats(rs.map((r) => r.p50)),
      p99: stats(rs.map((r) => r.p99)),
      cpuPerKReq: stats(rs.map((r) => r.cpuPerKReq)),
      dbCpuPerKReq: stats(rs.map((r) => r.dbCpuPerKReq)),
      rollbacksPerKReq: stats(rs.map((r) => r.rollbacksPerKReq)),
      otherLoad: stats(rs.map((r) => r.otherLoad)),
      failures: rs.reduce((s, r) => s + r.failures, 0),
    });
    const pgOverSqlite = (route, key) => stats(results.postgres[route].map((r, i) => r[key] / results.sqlite[route][i][key]));
    return {
      connections,
      seconds: controlSeconds,
      postgres: pg.settings,
      routes: Object.fromEntries(names.map((n) => [n, { status: route(results[n].status), create: route(results[n].create) }])),
      manyFiles,
      publish: Object.fromEntries(names.map((n) => [n, { p100: stats(published[n].p100), p1: stats(published[n].p1) }])),
      statusRatio: pgOverSqlite('status', 'rps'),
      createRatio: pgOverSqlite('create', 'rps'),
      peakRssMB: Object.fromEntries(names.map((n) => [n, procUsage(hosts[n].child.pid).peakRssMB])),
      runs: results,
    };
  } finally {
    await pgAdmin.end();
    for (const srv of Object.values(hosts)) await srv.stop();
    await stop(pgChild);
  }
}

// ---- index pages (issue #21) ------------------------------------------------------------------

/**
 * The simple index's project pages: a project of 100 files next to one of 1 file, and HEAD and a
 * conditional GET (304) next to the GET of the 100-file page, on our host with its page cache.
 * For reading the figures, the same 100-file page from a second process on the same database with
 * no page cache (`pageCacheBytes: 0`, every request lists and renders): what the cache saves.
 */
async function indexSection() {
  // Two processes on one database (SQLite settles who migrates it), started side by side.
  const token = randomBytes(18).toString('base64url');
  const dataDir = join(work, `ours-index-${randomBytes(4).toString('hex')}`);
  const [srv, uncached] = await Promise.all([
    startOurs('index', { env: { BENCH_INDEX: String(32 * MiB) }, dataDir, token }),
    startOurs('index-uncached', { env: { BENCH_INDEX: '0' }, dataDir, token }),
  ]);
  const tiny = await makeFile(1024, 'index-tiny');
  const uploadSmall = async (session, filename) => {
    const fs = await createFile(srv, session, filename, tiny.size, tiny.sha256, 'http-post-bytes');
    await MECHANISMS['http-post-bytes'].send(fs.mechanism, tiny.path, srv.auth);
    await complete(srv, fs);
  };
  const project = async (files) => {
    const { session, release } = await createSession(srv);
    const names = Array.from({ length: files }, (_, k) => `${release}-${k + 1}-py3-none-any.whl`);
    for (let k = 0; k < names.length; k += 16) await Promise.all(names.slice(k, k + 16).map((n) => uploadSmall(session, n)));
    await publish(srv, session);
    return release.slice(0, -'-1.0'.length);
  };
  const t0 = now();
  const big = await project(100);
  const small = await project(1);
  const populated = since(t0);
  dropBlobs(srv.dataDir);
  const pageOf = (s, name) => `${new URL(s.url).origin}/simple/${name}/`;
  const accept = 'application/vnd.pypi.simple.v1+json';
  const first = await fetch(pageOf(srv, big), { headers: { accept } });
  const etag = first.headers.get('etag');
  const bigBytes = (await first.arrayBuffer()).byteLength;
  const smallBytes = (await (await fetch(pageOf(srv, small), { headers: { accept } })).arrayBuffer()).byteLength;
  const targets = {
    'get-100': (d) => httpLoop(srv.child.pid, { url: pageOf(srv, big), headers: { accept } }, d),
    'get-1': (d) => httpLoop(srv.child.pid, { url: pageOf(srv, small), headers: { accept } }, d),
    'head-100': (d) => httpLoop(srv.child.pid, { url: pageOf(srv, big), method: 'HEAD', headers: { accept } }, d),
    'not-modified-100': (d) =>
      httpLoop(srv.child.pid, { url: pageOf(srv, big), headers: { accept, 'if-none-match': etag }, expect: 304 }, d),
    'uncached-get-100': (d) => httpLoop(uncached.child.pid, { url: pageOf(uncached, big), headers: { accept } }, d),
  };
  // Warm-up (JIT, connections, the cache), not recorded.
  for (const t of Object.values(targets)) await t(Math.min(1, controlSeconds / 2));
  const keys = Object.keys(targets);
  const results = Object.fromEntries(keys.map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const k of rotate(keys, i)) results[k].push(await targets[k]());
  const route = (k) => ({
    rps: stats(results[k].map((r) => r.rps)),
    p50: stats(results[k].map((r) => r.p50)),
    p99: stats(results[k].map((r) => r.p99)),
    cpuPerKReq: stats(results[k].map((r) => r.cpuPerKReq)),
    otherLoad: stats(results[k].map((r) => r.otherLoad)),
    failures: results[k].reduce((s, r) => s + r.failures, 0),
  });
  const routes = Object.fromEntries(keys.map((k) => [k, route(k)]));
  const ratio = (a, b) => stats(results[a].map((r, i) => r.rps / results[b][i].rps));
  // Server CPU per request: what a request costs the server, whatever else the machine runs.
  const cpuRatio = (a, b) => stats(results[a].map((r, i) => r.cpuPerKReq / results[b][i].cpuPerKReq));
  const entry = {
    connections,
    seconds: controlSeconds,
    pageBytes: { 100: bigBytes, 1: smallBytes },
    populateSeconds: populated,
    routes,
    peakRssMB: procUsage(srv.child.pid).peakRssMB,
    ratio100to1: ratio('get-100', 'get-1'),
    notModifiedToGet: ratio('not-modified-100', 'get-100'),
    cachedToUncached: ratio('get-100', 'uncached-get-100'),
    cpu100to1: cpuRatio('get-100', 'get-1'),
    cpuHeadToGet: cpuRatio('head-100', 'get-100'),
    cpuNotModifiedToGet: cpuRatio('not-modified-100', 'get-100'),
    cpuUncachedToCached: cpuRatio('uncached-get-100', 'get-100'),
    runs: results,
  };
  await stop(uncached.child);
  await srv.stop();
  rmSync(tiny.path, { force: true });
  return entry;
}

// ---- floors -----------------------------------------------------------------------------------

function hashFloor(alg, bytes) {
  const buf = randomBytes(MiB);
  const c0 = selfCpu();
  const t0 = now();
  const h = createHash(alg);
  for (let done = 0; done < bytes; done += MiB) h.update(buf);
  h.digest();
  const s = since(t0);
  return { mbps: mbps(bytes, s), cpuPerGB: (selfCpu() - c0) / (bytes / GB) };
}

/**
 * 64 KiB chunks (what a socket read gives) into a file, then fsync. `highWaterMark` undefined:
 * node's default 16 KiB buffer, one write per chunk; 1 MiB: chunks gather while a write is in
 * flight and go out in one writev, as our staging writes do (FILE_IO_CHUNK).
 */
async function diskFloor(bytes, highWaterMark) {
  const path = join(work, 'disk-floor');
  const buf = randomBytes(64 * 1024);
  const c0 = selfCpu();
  const t0 = now();
  let left = bytes / buf.length;
  await pipeline(
    Readable.from(
      (function* () {
        while (left-- > 0) yield buf;
      })(),
    ),
    createWriteStream(path, highWaterMark ? { highWaterMark } : {}),
  );
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
  const s = since(t0);
  rmSync(path);
  return { mbps: mbps(bytes, s), cpuPerGB: (selfCpu() - c0) / (bytes / GB) };
}

/** curl -T (its own reads and socket writes) POSTing the file to the discarding server: a native client's CPU, for reference. */
function curlFloor(discard, file) {
  const s0 = procUsage(discard.child.pid).cpu;
  const t0 = now();
  const r = spawnSync(
    'bash',
    [
      '-c',
      'TIMEFORMAT="%3U %3S"; time curl -sS -o /dev/null -X POST -H "content-type: application/octet-stream" -T "$1" "$2"',
      'curl-floor',
      file.path,
      `${discard.base}/`,
    ],
    { encoding: 'utf8' },
  );
  const s = since(t0);
  const times = /([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0 || !times) return undefined;
  return {
    mbps: mbps(file.size, s),
    clientCpuPerGB: (Number(times[1]) + Number(times[2])) / (file.size / GB),
    serverCpuPerGB: (procUsage(discard.child.pid).cpu - s0) / (file.size / GB),
  };
}

/** Our http-post-bytes client half POSTing to a server that discards the body. */
async function loopbackFloor(discard, file) {
  const m = await measure([discard.child.pid], () =>
    MECHANISMS['http-post-bytes'].rawMap(discard).then((map) => MECHANISMS['http-post-bytes'].send(map, file.path, 'Bearer floor')),
  );
  return {
    mbps: mbps(file.size, m.seconds),
    serverCpuPerGB: m.serverCpu / (file.size / GB),
    clientCpuPerGB: m.clientCpu / (file.size / GB),
    otherLoad: m.otherLoad,
  };
}

async function floorsSection(file) {
  const rs = { sha256: [], blake2b: [], disk: [], diskBatched: [], loopback: [], curl: [] };
  const discard = await startRaw('discard');
  const hasCurl = spawnSync('curl', ['--version']).status === 0;
  for (let i = 0; i < runs; i++) {
    rs.sha256.push(hashFloor('sha256', floorBytes));
    rs.blake2b.push(hashFloor('blake2b512', floorBytes));
    rs.disk.push(await diskFloor(floorBytes));
    rs.diskBatched.push(await diskFloor(floorBytes, MiB));
    rs.loopback.push(await loopbackFloor(discard, file));
    const c = hasCurl ? curlFloor(discard, file) : undefined;
    if (c) rs.curl.push(c);
  }
  await stop(discard.child);
  const s = (xs, k) => stats(xs.map((x) => x[k]));
  const f = {
    sha256: { mbps: s(rs.sha256, 'mbps'), cpuPerGB: s(rs.sha256, 'cpuPerGB') },
    blake2b: { mbps: s(rs.blake2b, 'mbps'), cpuPerGB: s(rs.blake2b, 'cpuPerGB') },
    disk: { mbps: s(rs.disk, 'mbps'), cpuPerGB: s(rs.disk, 'cpuPerGB') },
    diskBatched: { mbps: s(rs.diskBatched, 'mbps'), cpuPerGB: s(rs.diskBatched, 'cpuPerGB') },
    curl: rs.curl.length
      ? { mbps: s(rs.curl, 'mbps'), clientCpuPerGB: s(rs.curl, 'clientCpuPerGB'), serverCpuPerGB: s(rs.curl, 'serverCpuPerGB') }
      : undefined,
    loopback: {
      mbps: s(rs.loopback, 'mbps'),
      clientCpuPerGB: s(rs.loopback, 'clientCpuPerGB'),
      serverCpuPerGB: s(rs.loopback, 'serverCpuPerGB'),
      otherLoad: s(rs.loopback, 'otherLoad'),
      sizeMiB: file.size / MiB,
    },
    runs: rs,
  };
  // CPU seconds per GB of one verified upload: client send (our client half) + server receive +
  // sha256 + write (the cheaper way of writing), each the median of its floor; both cores busy
  // with nothing else gives the CPU limit.
  f.writeCpuPerGB = Math.min(f.disk.cpuPerGB.median, f.diskBatched.cpuPerGB.median);
  const cpuPerGB = f.loopback.clientCpuPerGB.median + f.loopback.serverCpuPerGB.median + f.sha256.cpuPerGB.median + f.writeCpuPerGB;
  f.cpuLimit = { cpuPerGB, mbps: (cores / cpuPerGB) * 1000 };
  // The same stages with no overlap at all (each waits for the previous): 1 / Σ 1/rate.
  f.serialLimit = {
    mbps: 1 / (1 / f.loopback.mbps.median + 1 / f.sha256.mbps.median + 1 / Math.max(f.disk.mbps.median, f.diskBatched.mbps.median)),
  };
  return f;
}

// ---- files ------------------------------------------------------------------------------------

async function makeFile(bytes, tag = String(bytes)) {
  const path = join(work, `upload-${tag}`);
  const chunk = Buffer.alloc(Math.min(4 * MiB, bytes));
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let done = 0; done < bytes; done += chunk.length) {
    const part = bytes - done < chunk.length ? chunk.subarray(0, bytes - done) : chunk;
    randomFillSync(part);
    h.update(part);
    if (!out.write(part)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  return { path, size: bytes, sha256: h.digest('hex') };
}

// ---- report -----------------------------------------------------------------------------------

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const range = (st, d = 0) =>
  st && Number.isFinite(st.median) ? (st.n > 1 ? `${fmt(st.median, d)} (${fmt(st.min, d)}–${fmt(st.max, d)})` : fmt(st.median, d)) : 'n/a';
const pct = (st) => (st && Number.isFinite(st.median) ? `${fmt(st.median * 100)}%` : 'n/a');
/** Busy shares: server main thread / server's busiest other thread (fs writes) / client main thread. */
const busy = (r) =>
  r?.serverMain ? `${fmt(r.serverMain.median * 100)} / ${fmt(r.serverThread.median * 100)} / ${fmt(r.clientMain.median * 100)}` : 'n/a';
const verdict = (ok) => (ok === undefined ? '–' : ok ? '✅ met' : '❌ missed');
const check = (value, op, target) =>
  Number.isFinite(value) ? (op === '>=' ? value >= target : op === '<=' ? value <= target : value < target) : undefined;

function machineFacts() {
  let fsType = '?';
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const best = mounts.filter((m) => work.startsWith(m[1])).sort((a, b) => b[1].length - a[1].length)[0];
    if (best) fsType = `${best[2]} on ${best[0]} (${best[1]})`;
  } catch {
    // not Linux
  }
  return {
    cpu: cpus()[0]?.model ?? '?',
    cores,
    memGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    serverFlags: [...SERVER_NODE_FLAGS, ...env('BENCH_CHILD_ARGS', '').split(' ').filter(Boolean)],
    workDir: work,
    fs: fsType,
    loadavgStart: loadavg(),
  };
}

function render(report) {
  const L = [];
  const m = report.machine;
  const f = report.floors;
  const limit = f?.cpuLimit?.mbps;
  L.push('# pnpm bench', '');
  L.push(
    `${report.date} · ${m.cpu} · ${m.cores} cores · ${m.memGiB} GiB · node ${m.node} · data on ${m.fs} · every server process (ours and raw) runs with \`${(m.serverFlags ?? []).join(' ')}\``,
  );
  L.push(
    `${report.runs} run(s) per figure, shown as median (min–max). Load average at start ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${report.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}. ${report.quick ? '**Quick mode** (small files, one run): checks that the bench runs; its figures mean little.' : ''}`,
  );
  L.push('');
  L.push(
    'Client and servers share the cores, so an upload is bound by CPU. CPU is user+system seconds of the server process (or of the client, this process) per GB moved. "Ratio" is the median of the per-run ratios of paired runs (run i against run i; peers take turns going first). "Others" is the share of the machine that other processes (other sessions on this shared machine) took during the runs: figures taken while it is high are noisy.',
  );
  L.push('');

  if (f) {
    L.push('## 1. Floors', '');
    L.push('| what | MB/s | CPU s/GB |', '| --- | --- | --- |');
    L.push(`| sha256 (node crypto, one core) | ${range(f.sha256.mbps)} | ${range(f.sha256.cpuPerGB, 2)} |`);
    L.push(`| blake2b512 (node crypto, one core) | ${range(f.blake2b.mbps)} | ${range(f.blake2b.cpuPerGB, 2)} |`);
    L.push(
      `| sequential write + fsync (data dir's disk, 64 KiB chunks, one write each: node's default 16 KiB buffer) | ${range(f.disk.mbps)} | ${range(f.disk.cpuPerGB, 2)} |`,
    );
    if (f.diskBatched)
      L.push(
        `| sequential write + fsync (64 KiB chunks through a 1 MiB buffer, one writev per batch: our staging writes) | ${range(f.diskBatched.mbps)} | ${range(f.diskBatched.cpuPerGB, 2)} |`,
      );
    L.push(
      `| loopback POST of ${f.loopback.sizeMiB} MiB to a discarding server (our http-post-bytes client half) | ${range(f.loopback.mbps)} | client ${range(f.loopback.clientCpuPerGB, 2)}, server ${range(f.loopback.serverCpuPerGB, 2)} |`,
    );
    if (f.curl)
      L.push(
        `| the same POST by curl -T (a native client, for reference; not in the limit) | ${range(f.curl.mbps)} | client ${range(f.curl.clientCpuPerGB, 2)}, server ${range(f.curl.serverCpuPerGB, 2)} |`,
      );
    L.push(
      `| **CPU limit of a verified upload**: ${m.cores} cores / (client + receive + sha256 + the cheaper write) | **${fmt(f.cpuLimit.mbps)}** | ${fmt(f.cpuLimit.cpuPerGB, 2)} |`,
    );
    L.push(
      `| no-overlap limit: loopback, sha256 and write one after the other (1 / Σ 1/MB/s; for reading the figures, no target) | ${fmt(f.serialLimit.mbps)} | |`,
    );
    L.push('');
  }

  if (report.uploads.length) {
    L.push('## 2–3. Each mechanism through the full PEP 694 flow, next to its raw peers', '');
    L.push(
      "Ours: create session → file session → execute (the mechanism's client half) → complete (every hash verified) → publish, timed from the first byte sent to the verified completion; publish timed apart. Raw peers (scripts/bench/raw-server.mjs) get the same client and the same file; each hashes sha256 and fsyncs before answering.",
      '',
    );
    L.push(
      '"Busy %" is the share of the wall time each thread ran: server main thread / the server\'s busiest other thread (libuv pool: file writes) / client main thread; none near 100 means no thread is saturated and the stages wait on each other.',
      '',
    );
    L.push(
      '| mechanism | size | server | MB/s | ratio ours/raw (target) | ÷ CPU limit | server CPU s/GB | CPU ours/raw | client CPU s/GB | busy % | peak RSS MB | others |',
    );
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const u of report.uploads) {
      L.push(
        `| ${u.mechanism} | ${u.sizeMiB} MiB | **ours** (${u.section === 'legacy' ? 'one POST: streamed, verified, published' : `complete ${range(u.ours.completeMs)} ms, publish ${range(u.ours.publishMs, 1)} ms`}) | ${range(u.ours.mbps)} | | ${fmt(u.ours.mbps.median / limit, 2)}${u.mechanism === 'http-post-bytes' ? ' (≥ 0.8)' : ''} | ${range(u.ours.cpuPerGB, 2)} | | ${range(u.ours.clientCpuPerGB, 2)} | ${busy(u.ours)} | ${fmt(u.ours.peakRssMB)} (< 150) | ${pct(u.ours.otherLoad)} |`,
      );
      if (u.vsTus?.ratio !== undefined)
        L.push(
          `| | | vnd-bench-tus, ours, same size in this run (no raw peer implements the draft) | ${range(u.vsTus.tusMbps)} | **${fmt(u.vsTus.ratio, 2)}** medians (≥ 0.9) | | | | | | | |`,
        );
      for (const r of u.raws) {
        const target = r.key === 'raw-tus-reread' ? '≥ 1.3' : '≥ 0.9';
        L.push(
          `| | | ${r.label} | ${range(r.mbps)} | **${range(r.ratio, 2)}** (${target}) | ${fmt(r.mbps.median / limit, 2)} | ${range(r.cpuPerGB, 2)} | ${range(r.cpuRatio, 2)}${u.mechanism === 'http-post-bytes' ? ' (≤ 1.1)' : ''} | ${range(r.clientCpuPerGB, 2)} | ${busy(r)} | ${fmt(r.peakRssMB)} | ${pct(r.otherLoad)} |`,
        );
      }
      if (u.curl) {
        L.push(
          `| | | **ours**, curl -T as the client | ${range(u.curl.ours.mbps)} | | ${fmt(u.curl.ours.mbps.median / limit, 2)} | ${range(u.curl.ours.cpuPerGB, 2)} | | ${range(u.curl.ours.clientCpuPerGB, 2)} | ${busy(u.curl.ours)} | | ${pct(u.curl.ours.otherLoad)} |`,
        );
        for (const r of u.curl.raws)
          L.push(
            `| | | ${r.label}, curl -T as the client | ${range(r.mbps)} | **${range(r.ratio, 2)}** (≥ 0.9) | ${fmt(r.mbps.median / limit, 2)} | ${range(r.cpuPerGB, 2)} | ${range(r.cpuRatio, 2)} | ${range(r.clientCpuPerGB, 2)} | ${busy(r)} | | ${pct(r.otherLoad)} |`,
          );
      }
    }
    L.push('');
    const curlRows = report.uploads.filter((u) => u.curl);
    if (curlRows.length) {
      L.push(
        'Client or server? The http-post-bytes rows are measured twice, with our client half (in this process) and with curl -T (its own process) as the client. Throughput with our half ÷ with curl, same server: ' +
          curlRows
            .map(
              (u) =>
                `${u.sizeMiB} MiB ours ${range(u.curl.halfOverCurl, 2)}, ${u.curl.raws.map((r) => `${r.key} ${range(r.halfOverCurl, 2)}`).join(', ')}; ratio ours/raw with our half ${u.raws.map((r) => range(r.ratio, 2)).join(', ')}, with curl ${u.curl.raws.map((r) => range(r.ratio, 2)).join(', ')}`,
            )
            .join('; ') +
          '. Client and servers share the two cores: a client that takes more CPU slows both servers, the one that needs less CPU more. See packages/client/README.md "Performance" for the finding.',
        '',
      );
    }
  }

  if (report.preload.length) {
    L.push('## Diagnosis: the raw pipeline in a heavier process', '');
    L.push(
      '| size | server | MB/s | ÷ bare | server CPU s/GB | CPU ÷ bare | busy % | peak RSS MB | others |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const p of report.preload) {
      for (const r of p.rows)
        L.push(
          `| ${p.sizeMiB} MiB | ${r.label} | ${range(r.mbps)} | ${range(r.ratioToBare, 2)} | ${range(r.cpuPerGB, 2)} | ${range(r.cpuRatioToBare, 2)} | ${busy(r)} | ${fmt(r.peakRssMB)} | ${pct(r.otherLoad)} |`,
        );
    }
    L.push('');
  }

  if (report.deferred.length) {
    L.push('## 3b. tus: deferred hash verification (hash state lost)', '');
    L.push(
      "Half the file PATCHed, the server restarted (SIGTERM, same data dir and port), the rest PATCHed by the client half (resume), then completion: 202 + `processing` while the host re-reads the adopted file to hash it, polled every 10 ms until `completed`. Next to `openssl dgst -sha256` and a bare node `createReadStream` → sha256 of the same bytes with node's default 64 KiB reads and with 1 MiB reads (what our blob store reads with), page cache warm for all.",
      '',
    );
    L.push(
      '| size | ours: complete → completed s | server CPU s/GB | openssl dgst -sha256 s | node re-read, 64 KiB reads s | node re-read, 1 MiB reads s | ours ÷ openssl | ours ÷ node 1 MiB | peak RSS MB (after restart) | others |',
    );
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const d of report.deferred) {
      L.push(
        `| ${d.sizeMiB} MiB | ${range(d.ours.seconds, 2)} | ${range(d.ours.cpuPerGB, 2)} | ${range(d.openssl.seconds, 2)} | ${range(d.node.seconds, 2)} | ${range(d.node1m?.seconds, 2)} | ${fmt(d.ratioToOpenssl, 2)} | ${fmt(d.ratioToNode1m, 2)} | ${fmt(d.ours.peakRssMB)} | ${pct(d.ours.otherLoad)} |`,
      );
    }
    L.push('');
  }

  if (report.concurrency.length) {
    L.push(`## 4. Concurrency: ${concurrency} simultaneous uploads`, '');
    L.push(
      'Ours: each in its own publishing session, timed from the first byte of all to the last verified completion. Raw: the in-stream raw peer, same client.',
      '',
    );
    L.push(
      '| mechanism | each | ours MB/s (aggregate) | raw MB/s | ratio (≥ 0.8) | ours CPU s/GB | raw CPU s/GB | ours peak RSS MB | raw peak RSS MB | others |',
    );
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const c of report.concurrency) {
      L.push(
        `| ${c.mechanism} | ${c.sizeMiB} MiB | ${range(c.ours.mbps)} | ${range(c.raw.mbps)} | **${range(c.ratio, 2)}** | ${range(c.ours.cpuPerGB, 2)} | ${range(c.raw.cpuPerGB, 2)} | ${fmt(c.ours.peakRssMB)} | ${fmt(c.raw.peakRssMB)} | ${pct(c.ours.otherLoad)} |`,
      );
    }
    L.push('');
  }

  const c = report.control;
  if (c) {
    L.push(`## 5. Control plane (${c.connections} connections, ${c.seconds} s per run, autocannon in the client process)`, '');
    L.push(
      '| route | server | req/s | p50 ms | p99 ms | server CPU ms / 1000 req | failures | others |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    const row = (label, server, r) =>
      L.push(
        `| ${label} | ${server} | ${range(r.rps)} | ${range(r.p50, 1)} | ${range(r.p99, 1)} | ${range(r.cpuPerKReq)} | ${r.failures} | ${pct(r.otherLoad)} |`,
      );
    row('GET session status (1 file)', '**ours**', c.routes['ours-status']);
    row('GET a JSON document', 'bare express', c.routes['express-status']);
    row('POST create file upload session (http-post-bytes)', '**ours**', c.routes['ours-create-file']);
    row('POST a JSON body, answer JSON', 'bare express', c.routes['express-post-json']);
    L.push('');
    L.push(
      `Session status ÷ bare express: **${range(c.statusRatio, 2)}** (target ≥ 0.5). Create file session ÷ bare express POST: ${range(c.createRatio, 2)} (no target). Peak RSS of our server through this section: ${fmt(c.peakRssMB)} MB.`,
      '',
    );
    L.push('| publish | ms |', '| --- | --- |');
    L.push(`| a session of 100 files (1 KiB each) | ${range(c.publish100Ms, 1)} |`);
    L.push(`| a session of one 1 KiB file | ${range(c.publishTinyMs, 1)} |`);
    L.push(`| a session of one ${c.bigMiB} MiB file | ${range(c.publishBigMs, 1)} |`);
    L.push(`| ${c.bigMiB} MiB ÷ 1 KiB (target ≤ 2) | **${fmt(c.publishRatio, 2)}** |`);
    L.push('');
  }

  const cp = report.controlPostgres;
  if (cp?.skipped) L.push('## 5b. Control plane on PostgreSQL next to SQLite', '', `Skipped: ${cp.skipped}`, '');
  else if (cp) {
    L.push(`## 5b. Control plane on PostgreSQL next to SQLite (${cp.connections} connections, ${cp.seconds} s per run)`, '');
    L.push(
      `Two hosts side by side, the same code and the same blobs (files) but for the session store: SQLite in the data dir (WAL, group commit: every answer after an fsync) and PostgreSQL ${cp.postgres?.server_version ?? ''} on loopback (a cluster of its own, \`fsync\` ${cp.postgres?.fsync}, \`synchronous_commit\` ${cp.postgres?.synchronous_commit}, \`full_page_writes\` ${cp.postgres?.full_page_writes}; the store's pool of 10). They take turns going first. With SQLite the database work is in the host's CPU; PostgreSQL's (all its processes) is in a column of its own. PostgreSQL shares the 2 cores with the host and autocannon: the figures show what a network database costs per request on one machine, not what it gives (several nodes).`,
      '',
    );
    L.push(
      '| route | store | req/s | p50 ms | p99 ms | host CPU ms / 1000 req | PostgreSQL CPU ms / 1000 req | PostgreSQL rollbacks / 1000 req (retried conflicts) | failures | others |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    const row = (label, store, r) =>
      L.push(
        `| ${label} | ${store} | ${range(r.rps)} | ${range(r.p50, 1)} | ${range(r.p99, 1)} | ${range(r.cpuPerKReq)} | ${store === 'SQLite' ? '(in the host)' : range(r.dbCpuPerKReq)} | ${store === 'SQLite' ? '' : range(r.rollbacksPerKReq)} | ${r.failures} | ${pct(r.otherLoad)} |`,
      );
    row('GET session status (1 file)', 'SQLite', cp.routes.sqlite.status);
    row('GET session status (1 file)', '**PostgreSQL**', cp.routes.postgres.status);
    row('POST create file upload session', 'SQLite', cp.routes.sqlite.create);
    row('POST create file upload session', '**PostgreSQL**', cp.routes.postgres.create);
    L.push('');
    L.push(
      `PostgreSQL ÷ SQLite (req/s, paired runs): session status **${range(cp.statusRatio, 2)}**, create file session **${range(cp.createRatio, 2)}** (no target in issue #17). Peak RSS of the hosts: SQLite ${fmt(cp.peakRssMB.sqlite)} MB, PostgreSQL ${fmt(cp.peakRssMB.postgres)} MB (the cluster's own memory not counted).`,
      '',
    );
    L.push('| publish (ms) | SQLite | PostgreSQL |', '| --- | --- | --- |');
    L.push(
      `| a session of ${cp.manyFiles} files (1 KiB each) | ${range(cp.publish.sqlite.p100, 1)} | ${range(cp.publish.postgres.p100, 1)} |`,
    );
    L.push(`| a session of one 1 KiB file | ${range(cp.publish.sqlite.p1, 1)} | ${range(cp.publish.postgres.p1, 1)} |`);
    L.push('');
  }

  const x = report.index;
  if (x) {
    L.push(
      `## 6. Index pages (${x.connections} keep-alive node:http loops, ${x.seconds} s per run; JSON pages of ${x.pageBytes[100]} and ${x.pageBytes[1]} bytes)`,
      '',
    );
    L.push(
      '| request | server | req/s | p50 ms | p99 ms | server CPU ms / 1000 req | failures | others |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    const row = (label, server, r) =>
      L.push(
        `| ${label} | ${server} | ${range(r.rps)} | ${range(r.p50, 1)} | ${range(r.p99, 1)} | ${range(r.cpuPerKReq)} | ${r.failures} | ${pct(r.otherLoad)} |`,
      );
    row('GET project page, 100 files', '**ours**', x.routes['get-100']);
    row('GET project page, 1 file', '**ours**', x.routes['get-1']);
    row('HEAD project page, 100 files', '**ours**', x.routes['head-100']);
    row('GET project page, 100 files, If-None-Match → 304', '**ours**', x.routes['not-modified-100']);
    row('GET project page, 100 files', 'ours, no page cache (for reading)', x.routes['uncached-get-100']);
    L.push('');
    L.push(
      `Server CPU per request (what a request costs, whatever else the machine runs): 100-file page ÷ 1-file page **${range(x.cpu100to1, 2)}** (target ≤ 2); ` +
        `HEAD ÷ GET **${range(x.cpuHeadToGet, 2)}** (target ≤ 1); 304 ÷ GET **${range(x.cpuNotModifiedToGet, 2)}** (target ≤ 1); without the page cache ÷ with it ${range(x.cpuUncachedToCached, 2)} (no target). ` +
        `Throughput (req/s, for reading): 100 files ÷ 1 file ${range(x.ratio100to1, 2)}; 304 ÷ GET ${range(x.notModifiedToGet, 2)}; cached ÷ uncached ${range(x.cachedToUncached, 2)}. Peak RSS: ${fmt(x.peakRssMB)} MB.`,
      '',
    );
  }

  if (report.client) {
    const c = report.client;
    L.push(`## The pep694 command (client section)`, '');
    L.push(
      `One ${c.sizeMiB} MiB file through \`pep694 upload --mechanism http-post-bytes\` (its own process: hashing, session, file session, POST, complete, publish) next to the same flow with \`openssl dgst -sha256\`, \`curl -T\` and fetch for the JSON requests, on our host. Client CPU: the child processes' user+system (bash \`times\`), plus this process's for curl's JSON requests. Of the curl flow's client CPU, the hash took ${range(c.curl.hashCpuPerGB, 2)} s/GB and curl's transfer ${range(c.curl.transferCpuPerGB, 2)} s/GB.`,
      '',
    );
    L.push('| flow | MB/s | wall s | client CPU s/GB | server CPU s/GB |', '| --- | --- | --- | --- | --- |');
    for (const [k, r] of [
      ['pep694 upload', c.ours],
      ['openssl + curl', c.curl],
    ])
      L.push(`| ${k} | ${range(r.mbps)} | ${range(r.seconds, 2)} | ${range(r.clientCpuPerGB, 2)} | ${range(r.cpuPerGB, 2)} |`);
    L.push('');
    L.push(
      `pep694 ÷ curl: throughput **${range(c.throughputRatio, 2)}** (target ≥ 0.9), client CPU **${range(c.clientCpuRatio, 2)}** (target ≤ 1.5). A release of one sdist and 20 wheels (1 MiB each): \`--parallel 4\` ${range(c.release.parallel4, 2)} s, \`--parallel 1\` ${range(c.release.parallel1, 2)} s (ratio ${range(c.release.ratio, 2)}).`,
      '',
    );
    L.push(
      c.twine
        ? `The same release as real archives (${c.twine.files} files, ${c.twine.fileMiB} MiB each), published: \`pep694 upload\` (default \`--parallel 8\`, the server's preferred mechanism) ${range(c.twine.pep694, 2)} s, \`twine upload\` to the legacy API (/legacy/) of the same server ${range(c.twine.twine, 2)} s: pep694 ÷ twine wall time **${range(c.twine.ratio, 2)}** (target ≤ 0.5). Archives built before each run, not timed; each round runs the commands in its own order, every command following every other equally often (a Williams design). The floor: the same Upload 2.0 flow through \`scripts/bench/minimal-client.mjs\` (node, keep-alive http, each file read once and hashed, create, POST, complete, eight in flight, publish; nothing else) ${range(c.twine.minimal, 2)} s, ÷ twine ${range(c.twine.minimalRatio, 2)}; pep694 ÷ that floor ${range(c.twine.pep694OverMinimal, 2)}. What the floor does not reach is the server's part.${c.twine.pep694NoExtraCa ? ` NODE_EXTRA_CA_CERTS is set here: node 20 then reads its whole CA store at every start, before the first line of any script (nodejs/node#40524), though an http:// index never uses it. The same rounds ran \`pep694 upload\` with it unset too: ${range(c.twine.pep694NoExtraCa, 2)} s, ÷ twine ${range(c.twine.ratioNoExtraCa, 2)}.` : ''}`
        : `\`pep694 upload\` against \`twine upload\`: not measured (${c.twineSkipped}).`,
      '',
    );
    if (c.twineRtt)
      L.push(
        `The same three through a proxy that holds every chunk ${c.twineRtt.rttMs / 2} ms each way (\`scripts/bench/delay-proxy.mjs\`: ${c.twineRtt.rttMs} ms round trips, as over a network; latency only): \`pep694 upload\` ${range(c.twineRtt.pep694, 2)} s, \`twine upload\` ${range(c.twineRtt.twine, 2)} s, ratio ${range(c.twineRtt.ratio, 2)} (no target); minimal client ${range(c.twineRtt.minimal, 2)} s, ÷ twine ${range(c.twineRtt.minimalRatio, 2)}; pep694 ÷ that floor ${range(c.twineRtt.pep694OverMinimal, 2)}${c.twineRtt.pep694NoExtraCa ? `; \`pep694 upload\` with NODE_EXTRA_CA_CERTS unset ${range(c.twineRtt.pep694NoExtraCa, 2)} s, ÷ twine ${range(c.twineRtt.ratioNoExtraCa, 2)}` : ''}. Upload 2.0 makes three round trips per file where the legacy API makes one.`,
        '',
      );
  }

  const s3 = report.s3;
  if (s3) {
    L.push(`## 7. S3 blobs (@pep694/blobs-s3 on s3rver, loopback)`, '');
    L.push(
      "s3rver (a test server that writes each part to disk, then copies the parts into the object at completion) runs in its own process; its CPU counts as the S3 host's. It is not a production S3: the row shows what the store costs the host, not what AWS, MinIO or R2 would do.",
      '',
    );
    L.push(
      '| http-post-bytes, full flow | size | MB/s | S3 ÷ filesystem | server CPU s/GB | busy % (server main / fs thread / client) | peak RSS MB | others |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    L.push(
      `| **ours, S3 blobs** | ${s3.sizeMiB} MiB | ${range(s3.s3.mbps)} | **${range(s3.ratio, 2)}** | ${range(s3.s3.cpuPerGB, 2)} (host + s3rver; the host alone ${range(s3.s3.hostCpuPerGB, 2)}) | ${busy(s3.s3)} | ${fmt(s3.s3.peakRssMB)} (s3rver ${fmt(s3.s3.s3rverPeakRssMB)}) | ${pct(s3.s3.otherLoad)} |`,
    );
    L.push(
      `| ours, S3 blobs, without s3rver's assembly (for reading) | ${s3.sizeMiB} MiB | ${range(s3.s3.mbpsWithoutAssembly)} | ${range(s3.ratioWithoutAssembly, 2)} | | | | |`,
    );
    L.push(
      `| ours, filesystem blobs | ${s3.sizeMiB} MiB | ${range(s3.fs.mbps)} | | ${range(s3.fs.cpuPerGB, 2)} | ${busy(s3.fs)} | ${fmt(s3.fs.peakRssMB)} | ${pct(s3.fs.otherLoad)} |`,
    );
    L.push('');
    L.push(
      `The staging's commit at the end of the upload sends CompleteMultipartUpload, which s3rver answers by copying every part into one file: ${range(s3.s3.assembleMs)} ms of each ${s3.sizeMiB} MiB upload above, and ${range(s3.assembleBigMs)} ms for ${s3.bigMiB} MiB (AWS S3, MinIO and R2 assemble without such a pass through a process). "Without s3rver's assembly" takes those milliseconds off the upload's time.`,
      '',
    );
    L.push(
      "On S3, publishing moves no bytes: the host moves a verified blob from `staging/` to `files/` at completion, which the S3 store does by rewriting a pointer object, and publishing is a database step. Both are timed the same way for both sizes: per run, the big file and three 1 KiB files are each uploaded into a publishing session of their own, then completed one after another in a rotating order, then published likewise (a `sync` before each series: s3rver shares the disk with the host's SQLite, a real bucket does not). Over a multiple of 4 runs each size goes first equally often; over 1–3 or 5 runs the big file goes first more often, which can only count against it. s3rver's request log says what each step asked of it.",
      '',
    );
    const st = (x) =>
      `${range(x.ms, 1)} | ${range(x.s3Requests)} req, ${range(x.s3Bytes)} bytes, ${range(x.s3Copies)} copies, ${range(x.s3Ms, 1)} ms | ${range(x.msWithoutS3, 1)}`;
    L.push(
      '| on S3 | step | ms (client) | asked of s3rver: requests, bytes, server-side copies, s3rver ms | ms without s3rver |',
      '| --- | --- | --- | --- | --- |',
    );
    L.push(`| one ${s3.bigMiB} MiB file | completion (the move) | ${st(s3.complete.big)} |`);
    L.push(`| one 1 KiB file | completion (the move) | ${st(s3.complete.tiny)} |`);
    L.push(`| one ${s3.bigMiB} MiB file | publish | ${st(s3.publish.big)} |`);
    L.push(`| one 1 KiB file | publish | ${st(s3.publish.tiny)} |`);
    L.push('');
    L.push(
      `${s3.bigMiB} MiB ÷ 1 KiB (medians, target ≤ 2): publish **${fmt(s3.publishRatio, 2)}**; completion **${fmt(s3.completeRatio, 2)}**, without s3rver's time ${fmt(s3.completeRatioWithoutS3, 2)}.`,
      '',
    );
    const p = s3.completeByPosition;
    L.push(
      `For reading, what the order costs: the first completion after the uploads, whichever file it is, next to the later ones: ${s3.bigMiB} MiB first ${range(p.bigFirst, 1)} ms, later ${range(p.bigLater, 1)} ms; 1 KiB first ${range(p.tinyFirst, 1)} ms, later ${range(p.tinyLater, 1)} ms. Before, this section timed the big file's completion and publish right after its own upload and set them against 1 KiB files' timed right after theirs (2.4–3.3 for completion; 2.56 for the publish, which asks nothing of s3rver): those ratios compared different histories (a gigabyte just written through s3rver, its assembly included, against a kilobyte), not the steps.`,
      '',
    );
  }

  const s3p = report.s3presigned;
  if (s3p) {
    L.push(`## 8. S3 presigned parts (vnd-bench-s3multipart-presigned) next to http-post-bytes, same S3 backend`, '');
    L.push(
      "One host with S3 blobs (s3rver in its own process), runs alternating. With presigned parts the client PUTs the bytes to s3rver itself; the host answers the parts route, completes the multipart upload, and verifies the file by reading it back (S3 has no whole-object SHA-256 of a multipart upload): that read is most of its CPU. s3rver's CPU is the bucket's (a real S3 spends it on its own machines); s3rver also copies the parts into the object at completion, which AWS does not do in the caller's time.",
      '',
    );
    L.push(
      '| mechanism | size | MB/s (flow) | host CPU s/GB | of which transfer / completion+verification | s3rver CPU s/GB | client CPU s/GB | complete ms |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const [label, x] of [
      ['**s3multipart-presigned**', s3p.presigned],
      ['http-post-bytes', s3p.httpPostBytes],
    ]) {
      L.push(
        `| ${label} | ${s3p.sizeMiB} MiB | ${range(x.mbps)} | ${range(x.hostCpuPerGB, 2)} | ${range(x.hostTransferCpuPerGB, 2)} / ${range(x.hostCompleteCpuPerGB, 2)} | ${range(x.s3rverCpuPerGB, 2)} | ${range(x.clientCpuPerGB, 2)} | ${range(x.completeMs, 0)} |`,
      );
    }
    L.push(
      '',
      `Host CPU per GB, presigned ÷ http-post-bytes: **${range(s3p.hostCpuRatio, 2)}**. Host peak RSS ${fmt(s3p.peakRssMB)} MB.`,
      '',
    );
  }

  if (report.cluster) L.push(...renderCluster(report.cluster, fmt));

  L.push('## Targets', '');
  L.push('| target | measured | verdict |', '| --- | --- | --- |');
  for (const t of report.targets) L.push(`| ${t.target} | ${t.measured} | ${verdict(t.ok)} |`);
  L.push('');
  return L.join('\n');
}

function targets(report) {
  const T = [];
  if (report.client) {
    const c = report.client;
    T.push({
      target: `pep694 upload of ${c.sizeMiB} MiB ≥ 0.9× the same flow driven by curl (throughput)`,
      measured: `${fmt(c.throughputRatio.median, 2)} (${fmt(c.throughputRatio.min, 2)}–${fmt(c.throughputRatio.max, 2)})`,
      ok: check(c.throughputRatio.median, '>=', 0.9),
    });
    T.push({
      target: `pep694 upload of ${c.sizeMiB} MiB client CPU s/GB ≤ 1.5× the curl flow's (hash included)`,
      measured: `${fmt(c.clientCpuRatio.median, 2)} (${fmt(c.ours.clientCpuPerGB.median, 2)} vs ${fmt(c.curl.clientCpuPerGB.median, 2)})`,
      ok: check(c.clientCpuRatio.median, '<=', 1.5),
    });
    if (c.twine)
      T.push({
        target: `pep694 upload of a release of ${c.twine.files} files (${c.twine.fileMiB} MiB each) wall time ≤ 0.5× twine upload's to /legacy/`,
        measured: `${fmt(c.twine.ratio.median, 2)} (${fmt(c.twine.pep694.median, 2)} s vs ${fmt(c.twine.twine.median, 2)} s)`,
        ok: check(c.twine.ratio.median, '<=', 0.5),
      });
  }
  const limit = report.floors?.cpuLimit?.mbps;
  for (const u of report.uploads) {
    for (const r of u.raws) {
      const t = r.key === 'raw-tus-reread' ? 1.3 : 0.9;
      T.push({
        target: `${u.mechanism} ${u.sizeMiB} MiB ≥ ${t}× ${r.label}`,
        measured: `${fmt(r.ratio.median, 2)} (${fmt(r.ratio.min, 2)}–${fmt(r.ratio.max, 2)})`,
        ok: check(r.ratio.median, '>=', t),
      });
      if (u.mechanism === 'http-post-bytes') {
        T.push({
          target: `http-post-bytes ${u.sizeMiB} MiB server CPU ≤ 1.1× raw`,
          measured: fmt(r.cpuRatio.median, 2),
          ok: check(r.cpuRatio.median, '<=', 1.1),
        });
      }
    }
    for (const r of u.curl?.raws ?? []) {
      T.push({
        target: `${u.mechanism} ${u.sizeMiB} MiB ≥ 0.9× ${r.label}, curl -T as the client of both`,
        measured: `${fmt(r.ratio.median, 2)} (${fmt(r.ratio.min, 2)}–${fmt(r.ratio.max, 2)})`,
        ok: check(r.ratio.median, '>=', 0.9),
      });
    }
    if (u.vsTus?.ratio !== undefined) {
      T.push({
        target: `${u.mechanism} ${u.sizeMiB} MiB ≥ 0.9× vnd-bench-tus (ours, medians of the same run)`,
        measured: fmt(u.vsTus.ratio, 2),
        ok: check(u.vsTus.ratio, '>=', 0.9),
      });
    }
    if (u.mechanism === 'http-post-bytes') {
      T.push({
        target: `http-post-bytes ${u.sizeMiB} MiB ≥ 0.8 of the CPU limit (${fmt(limit)} MB/s)`,
        measured: fmt(u.ours.mbps.median / limit, 2),
        ok: check(u.ours.mbps.median / limit, '>=', 0.8),
      });
    }
  }
  const bySection = new Map();
  for (const u of report.uploads) bySection.set(u.mechanism, [...(bySection.get(u.mechanism) ?? []), u]);
  for (const [mech, us] of bySection) {
    const big = us.reduce((a, b) => (b.sizeMiB > a.sizeMiB ? b : a));
    const small = us.reduce((a, b) => (b.sizeMiB < a.sizeMiB ? b : a));
    T.push({
      target: `${mech} peak RSS < 150 MB for one ${big.sizeMiB} MiB upload`,
      measured: `${fmt(big.ours.peakRssMB)} MB`,
      ok: check(big.ours.peakRssMB, '<', 150),
    });
    if (big !== small) {
      const growth = big.ours.peakRssMB - small.ours.peakRssMB;
      T.push({
        target: `${mech} peak RSS grows < 20 MB from ${small.sizeMiB} MiB to ${big.sizeMiB} MiB`,
        measured: `${fmt(growth, 1)} MB`,
        ok: check(growth, '<', 20),
      });
    }
  }
  for (const c of report.concurrency) {
    T.push({
      target: `${c.mechanism} ${c.uploads}× ${c.sizeMiB} MiB at once ≥ 0.8 of ${c.rawLabel}`,
      measured: `${fmt(c.ratio.median, 2)} (${fmt(c.ratio.min, 2)}–${fmt(c.ratio.max, 2)})`,
      ok: check(c.ratio.median, '>=', 0.8),
    });
  }
  const c = report.control;
  if (c) {
    T.push({
      target: 'session status ≥ 0.5 of a bare express JSON route (req/s)',
      measured: `${fmt(c.statusRatio.median, 2)} (${fmt(c.statusRatio.min, 2)}–${fmt(c.statusRatio.max, 2)})`,
      ok: check(c.statusRatio.median, '>=', 0.5),
    });
    T.push({
      target: `publishing ${c.bigMiB} MiB ≤ 2× publishing 1 KiB`,
      measured: fmt(c.publishRatio, 2),
      ok: check(c.publishRatio, '<=', 2),
    });
  }
  const cp = report.controlPostgres;
  if (cp && !cp.skipped) {
    T.push({
      target: 'PostgreSQL ÷ SQLite, session status req/s (no target; for reading)',
      measured: `${fmt(cp.statusRatio.median, 2)} (${fmt(cp.statusRatio.min, 2)}–${fmt(cp.statusRatio.max, 2)})`,
      ok: undefined,
    });
    T.push({
      target: 'PostgreSQL ÷ SQLite, create file session req/s (no target; for reading)',
      measured: `${fmt(cp.createRatio.median, 2)} (${fmt(cp.createRatio.min, 2)}–${fmt(cp.createRatio.max, 2)})`,
      ok: undefined,
    });
  }
  const s3 = report.s3;
  if (s3) {
    T.push({
      target: `S3 (s3rver): publishing ${s3.bigMiB} MiB ≤ 2× publishing 1 KiB (the publish POST, taken after the same uploads)`,
      measured: `${fmt(s3.publishRatio, 2)} (${fmt(s3.publish.big.ms.median, 1)} ÷ ${fmt(s3.publish.tiny.ms.median, 1)} ms)`,
      ok: check(s3.publishRatio, '<=', 2),
    });
    T.push({
      target: `S3 (s3rver): completing ${s3.bigMiB} MiB (its move to files/) ≤ 2× completing 1 KiB`,
      measured: `${fmt(s3.completeRatio, 2)} (${fmt(s3.complete.big.ms.median, 1)} ÷ ${fmt(s3.complete.tiny.ms.median, 1)} ms; without s3rver's time ${fmt(s3.completeRatioWithoutS3, 2)})`,
      ok: check(s3.completeRatio, '<=', 2),
    });
  }
  const x = report.index;
  if (x) {
    const m = (s) => `${fmt(s.median, 2)} (${fmt(s.min, 2)}–${fmt(s.max, 2)})`;
    T.push({
      target: 'index: server CPU per GET of a 100-file project page ≤ 2× a 1-file page',
      measured: m(x.cpu100to1),
      ok: check(x.cpu100to1.median, '<=', 2),
    });
    T.push({
      target: 'index: server CPU per HEAD of the 100-file page ≤ 1× its GET',
      measured: m(x.cpuHeadToGet),
      ok: check(x.cpuHeadToGet.median, '<=', 1),
    });
    T.push({
      target: 'index: server CPU per If-None-Match (304) of the 100-file page ≤ 1× its GET',
      measured: m(x.cpuNotModifiedToGet),
      ok: check(x.cpuNotModifiedToGet.median, '<=', 1),
    });
  }
  for (const d of report.deferred) {
    T.push({
      target: `tus deferred verification of ${d.sizeMiB} MiB, next to openssl dgst -sha256 (no target)`,
      measured: `${fmt(d.ours.seconds.median, 2)} s vs ${fmt(d.openssl.seconds.median, 2)} s (${fmt(d.ratioToOpenssl, 2)}×)`,
      ok: undefined,
    });
  }
  return T;
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  mkdirSync(outDir, { recursive: true });
  const report = {
    date: new Date().toISOString(),
    quick,
    runs,
    sizesMiB: sizes.map((s) => s / MiB),
    sections: [...only],
    machine: machineFacts(),
    floors: undefined,
    uploads: [],
    deferred: [],
    concurrency: [],
    preload: [],
    control: undefined,
    controlPostgres: undefined,
    index: undefined,
    client: undefined,
    s3: undefined,
    cluster: undefined,
  };
  const log = (...a) => console.log(`[${since(start).toFixed(0).padStart(4)} s]`, ...a);
  log(
    `bench: ${cores} cores, ${runs} run(s), sizes ${sizes.map((s) => s / MiB).join(', ')} MiB, sections ${[...only].join(',')}, work dir ${work}`,
  );
  const largest = Math.max(...sizes);
  const files = new Map();
  const fileOf = async (bytes) => {
    if (!files.has(bytes)) files.set(bytes, await makeFile(bytes));
    return files.get(bytes);
  };
  const release = (bytes) => {
    const f = files.get(bytes);
    if (f) rmSync(f.path, { force: true });
    files.delete(bytes);
  };

  if (only.has('floors')) {
    report.floors = await floorsSection(await fileOf(largest));
    const f = report.floors;
    log(
      `floors: sha256 ${fmt(f.sha256.mbps.median)} MB/s, blake2b ${fmt(f.blake2b.mbps.median)} MB/s, disk ${fmt(f.disk.mbps.median)} MB/s, loopback ${fmt(f.loopback.mbps.median)} MB/s, CPU limit ${fmt(f.cpuLimit.mbps)} MB/s (${fmt(f.cpuLimit.cpuPerGB, 2)} CPU s/GB)`,
    );
  }
  for (const bytes of [...sizes].sort((a, b) => a - b)) {
    for (const name of ['http-post-bytes', 'tus', 'multipart', 'resumable', 'legacy']) {
      if (!only.has(name)) continue;
      const u = await uploadSection(name, await fileOf(bytes), bytes);
      if (name === 'resumable') {
        const tus = report.uploads.find((x) => x.section === 'tus' && x.sizeMiB === u.sizeMiB);
        if (tus) u.vsTus = { ratio: tus.ours.mbps.median ? u.ours.mbps.median / tus.ours.mbps.median : undefined, tusMbps: tus.ours.mbps };
      }
      report.uploads.push(u);
      log(
        `${u.mechanism} ${u.sizeMiB} MiB: ours ${fmt(u.ours.mbps.median)} MB/s ${fmt(u.ours.cpuPerGB.median, 2)} CPU s/GB, RSS ${fmt(u.ours.peakRssMB)} MB; ${u.raws.map((r) => `${r.key} ${fmt(r.mbps.median)} MB/s ${fmt(r.cpuPerGB.median, 2)} CPU s/GB (ratio ${fmt(r.ratio.median, 2)})`).join('; ')}`,
      );
    }
    if (bytes !== largest && bytes !== concBytes) release(bytes);
  }
  if (only.has('preload')) {
    for (const bytes of sizes) {
      const p = await preloadSection(await fileOf(bytes), bytes);
      report.preload.push(p);
      log(
        `preload ${p.sizeMiB} MiB: ${p.rows.map((r) => `${r.key} ${fmt(r.mbps.median)} MB/s ${fmt(r.cpuPerGB.median, 2)} CPU s/GB`).join('; ')}`,
      );
    }
  }
  if (only.has('tus')) {
    const d = await deferredSection(await fileOf(largest), largest);
    report.deferred.push(d);
    log(
      `tus deferred verification ${d.sizeMiB} MiB: ${fmt(d.ours.seconds.median, 2)} s, openssl ${fmt(d.openssl.seconds.median, 2)} s, node ${fmt(d.node.seconds.median, 2)} s (64 KiB reads), ${fmt(d.node1m.seconds.median, 2)} s (1 MiB reads)`,
    );
  }
  if (only.has('concurrency')) {
    for (const name of ['http-post-bytes', 'tus', 'multipart']) {
      const c = await concurrencySection(name, await fileOf(concBytes), concBytes);
      report.concurrency.push(c);
      log(
        `concurrency ${c.mechanism} ${c.uploads}× ${c.sizeMiB} MiB: ours ${fmt(c.ours.mbps.median)} MB/s, raw ${fmt(c.raw.mbps.median)} MB/s (ratio ${fmt(c.ratio.median, 2)}), RSS ${fmt(c.ours.peakRssMB)} vs ${fmt(c.raw.peakRssMB)} MB`,
      );
    }
  }
  if (concBytes !== largest) release(concBytes);
  if (only.has('control')) {
    const c = await controlSection(await fileOf(largest));
    report.control = c;
    log(
      `control: status ${fmt(c.routes['ours-status'].rps.median)} req/s vs express ${fmt(c.routes['express-status'].rps.median)} (ratio ${fmt(c.statusRatio.median, 2)}); create file ${fmt(c.routes['ours-create-file'].rps.median)} req/s; publish 100 files ${fmt(c.publish100Ms.median)} ms, 1 KiB ${fmt(c.publishTinyMs.median, 1)} ms, ${c.bigMiB} MiB ${fmt(c.publishBigMs.median, 1)} ms`,
    );
  }
  let postgresMissing;
  try {
    postgresBinDir();
  } catch (err) {
    postgresMissing = err.message;
  }
  if (only.has('control-postgres') && postgresMissing && !process.env.BENCH_ONLY) {
    // The default run goes on without it (named in BENCH_ONLY, it fails instead).
    log(`control-postgres skipped: ${postgresMissing}`);
    report.controlPostgres = { skipped: postgresMissing };
  } else if (only.has('control-postgres')) {
    const c = await controlPostgresSection();
    report.controlPostgres = c;
    const r = c.routes;
    log(
      `control-postgres: status ${fmt(r.postgres.status.rps.median)} req/s on PostgreSQL vs ${fmt(r.sqlite.status.rps.median)} on SQLite (ratio ${fmt(c.statusRatio.median, 2)}); create file ${fmt(r.postgres.create.rps.median)} vs ${fmt(r.sqlite.create.rps.median)} (ratio ${fmt(c.createRatio.median, 2)}); publish ${c.manyFiles} files ${fmt(c.publish.postgres.p100.median, 1)} vs ${fmt(c.publish.sqlite.p100.median, 1)} ms, 1 file ${fmt(c.publish.postgres.p1.median, 1)} vs ${fmt(c.publish.sqlite.p1.median, 1)} ms`,
    );
  }
  if (only.has('index')) {
    const x = await indexSection();
    report.index = x;
    const cpu = (k) => fmt(x.routes[k].cpuPerKReq.median / 1000, 3);
    log(
      `index: server CPU ms/request: GET 100 files ${cpu('get-100')}, 1 file ${cpu('get-1')} (ratio ${fmt(x.cpu100to1.median, 2)}), HEAD ${cpu('head-100')} (÷ GET ${fmt(x.cpuHeadToGet.median, 2)}), 304 ${cpu('not-modified-100')} (÷ GET ${fmt(x.cpuNotModifiedToGet.median, 2)}), uncached GET ${cpu('uncached-get-100')}; req/s GET 100 ${fmt(x.routes['get-100'].rps.median)}, 1 ${fmt(x.routes['get-1'].rps.median)}, 304 ${fmt(x.routes['not-modified-100'].rps.median)}, uncached ${fmt(x.routes['uncached-get-100'].rps.median)}`,
    );
  }
  if (only.has('client')) {
    // The largest size: the issue's target is for a 1 GiB file through the command.
    const c = await clientSection({
      startOurs,
      procUsage,
      stats,
      paired,
      makeFile,
      file: await fileOf(largest),
      bytes: largest,
      runs,
      work,
      cli: join(root, 'packages', 'client', 'dist', 'cli', 'pep694.cjs'),
      META,
      rttMs: Number(env('BENCH_RTT_MS', '20')),
    });
    report.client = c;
    log(
      `client ${c.sizeMiB} MiB: pep694 ${fmt(c.ours.mbps.median)} MB/s ${fmt(c.ours.clientCpuPerGB.median, 2)} client CPU s/GB; curl ${fmt(c.curl.mbps.median)} MB/s ${fmt(c.curl.clientCpuPerGB.median, 2)} (ratios ${fmt(c.throughputRatio.median, 2)}, CPU ${fmt(c.clientCpuRatio.median, 2)}); release of 21 files ${fmt(c.release.parallel4.median, 2)} s (--parallel 4) vs ${fmt(c.release.parallel1.median, 2)} s (--parallel 1); ${c.twine ? `pep694 ${fmt(c.twine.pep694.median, 2)} s vs twine ${fmt(c.twine.twine.median, 2)} s (ratio ${fmt(c.twine.ratio.median, 2)}; minimal client ${fmt(c.twine.minimal.median, 2)} s, ratio ${fmt(c.twine.minimalRatio.median, 2)})` : 'twine not measured'}${c.twineRtt ? `; at ${c.twineRtt.rttMs} ms round trips pep694 ${fmt(c.twineRtt.pep694.median, 2)} s vs twine ${fmt(c.twineRtt.twine.median, 2)} s (ratio ${fmt(c.twineRtt.ratio.median, 2)})` : ''}`,
    );
  }
  if (only.has('s3')) {
    const big = s3PublishBytes === s3Bytes ? await fileOf(s3Bytes) : await makeFile(s3PublishBytes, 's3-publish');
    const x = await s3Section(await fileOf(s3Bytes), s3Bytes, big);
    if (big.path !== files.get(s3Bytes)?.path) rmSync(big.path, { force: true });
    report.s3 = x;
    log(
      `s3: http-post-bytes ${x.sizeMiB} MiB into S3 (s3rver) ${fmt(x.s3.mbps.median)} MB/s ${fmt(x.s3.cpuPerGB.median, 2)} CPU s/GB (host + s3rver; s3rver's assembly ${fmt(x.s3.assembleMs.median)} ms), filesystem ${fmt(x.fs.mbps.median)} MB/s ${fmt(x.fs.cpuPerGB.median, 2)} CPU s/GB (ratio ${fmt(x.ratio.median, 2)}, ${fmt(x.ratioWithoutAssembly.median, 2)} without the assembly); ${x.bigMiB} MiB ÷ 1 KiB on S3: complete ${fmt(x.complete.big.ms.median, 1)} ÷ ${fmt(x.complete.tiny.ms.median, 1)} ms (${fmt(x.completeRatio, 2)}; without s3rver ${fmt(x.completeRatioWithoutS3, 2)}), publish ${fmt(x.publish.big.ms.median, 1)} ÷ ${fmt(x.publish.tiny.ms.median, 1)} ms (${fmt(x.publishRatio, 2)})`,
    );
  }
  if (only.has('s3-presigned')) {
    const x = await s3PresignedSection(await fileOf(s3pBytes), s3pBytes);
    report.s3presigned = x;
    const p = x.presigned;
    const h = x.httpPostBytes;
    log(
      `s3-presigned ${x.sizeMiB} MiB into S3 (s3rver): presigned ${fmt(p.mbps.median)} MB/s, host ${fmt(p.hostCpuPerGB.median, 2)} CPU s/GB (transfer ${fmt(p.hostTransferCpuPerGB.median, 2)}, completion+verification ${fmt(p.hostCompleteCpuPerGB.median, 2)}), s3rver ${fmt(p.s3rverCpuPerGB.median, 2)}; http-post-bytes ${fmt(h.mbps.median)} MB/s, host ${fmt(h.hostCpuPerGB.median, 2)} CPU s/GB (transfer ${fmt(h.hostTransferCpuPerGB.median, 2)}, completion ${fmt(h.hostCompleteCpuPerGB.median, 2)}), s3rver ${fmt(h.s3rverCpuPerGB.median, 2)}; host CPU ratio ${fmt(x.hostCpuRatio.median, 2)}`,
    );
  }
  if (only.has('cluster')) {
    const c = await clusterSection({ root, runs, quick, controlSeconds, connections, stats, rotate });
    report.cluster = c;
    log(
      `cluster: status ${fmt(c.one.statusRps.median)} req/s one node vs ${fmt(c.three.statusRps.median)} three behind the proxy (${fmt(c.statusRatio, 2)}); create file ${fmt(c.one.createRps.median)} vs ${fmt(c.three.createRps.median)} (${fmt(c.createRatio, 2)}); ${c.uploads}× ${c.uploadMiB} MiB uploads ${fmt(c.one.uploadMbps.median, 1)} vs ${fmt(c.three.uploadMbps.median, 1)} MB/s (${fmt(c.uploadRatio, 2)})`,
    );
    log(`cluster: ${c.note}`);
  }
  report.loadavgEnd = loadavg();
  report.seconds = since(start);
  report.targets = targets(report);
  writeFileSync(join(outDir, 'report.md'), render(report));
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), join(outDir, 'report.md'))} and report.json`);
  for (const t of report.targets) console.log(`  ${verdict(t.ok)}  ${t.target}: ${t.measured}`);
}
const start = now();

const cleanup = () => {
  // A child that owns more than its process (postgres.mjs: a cluster) gets to clean up after itself.
  for (const child of children) child.kill(child.graceful ? 'SIGTERM' : 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(cleanup);
