// The `cluster` section of `pnpm bench` (issue #17): one reference-index node reached directly
// next to three nodes behind the round-robin proxy, all of them on one PostgreSQL and one S3
// bucket (s3rver), as `pnpm cluster` starts them (examples/cluster, in a child process of its own:
// the proxy and s3rver run there, not in this client's event loop).
//
// - control plane: session status (GET) and create-file-session (POST) with autocannon, the
//   create requests spread over several publishing sessions (each holds at most 1000 files);
// - a small upload throughput: `uploads` concurrent http-post-bytes uploads of `mib` MiB each,
//   created, sent and completed (through the proxy the completion usually lands on another node
//   than the bytes, which then re-reads them from the bucket to hash them).
//
// The one node is node-1 of the same cluster (the two others idle), so both rows share the same
// database and bucket. On a 2-core machine this shows what the proxy hop and the shared database
// cost, not a speed-up: three nodes, PostgreSQL, s3rver and the client share the two cores.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';

const META = { 'api-version': '2.0' };
const JSON_TYPE = 'application/vnd.pypi.upload.v2+json';
export const CLUSTER_NOTE =
  'On a 2-core machine this shows the cost of the proxy hop and of the shared database (three nodes, PostgreSQL, s3rver and the client on the same two cores), not a speed-up: more nodes pay off when each has cores of its own.';

/** Starts `pnpm cluster`'s script with `nodes` nodes; resolves with its proxy, nodes and token from the banner. */
function startClusterProcess(root, nodes) {
  const child = spawn(process.execPath, [join(root, 'examples', 'cluster', 'dist', 'main.js'), '--nodes', String(nodes), '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Random bytes, as every bench uploads: no archive checks (the other sections' host has no validators either).
    env: { ...process.env, PEP694_LOG_LEVEL: 'error', PEP694_MAX_NEW_PROJECTS: '1000000', PEP694_VALIDATE_ARTIFACTS: '0' },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d;
      const proxy = /proxy \(round robin\):\s+(\S+)/.exec(out);
      const token = /token:\s+(\S+)/.exec(out);
      if (!proxy || !token || !out.includes('Ctrl+C stops everything')) return;
      const origins = [...out.matchAll(/^\s+(node-\d+):\s+(http:\/\/\S+)/gm)].map((m) => ({ name: m[1], origin: m[2] }));
      child.stdout.off('data', onData);
      child.stdout.resume();
      resolve({ child, proxy: proxy[1], nodes: origins, token: token[1] });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code) => reject(new Error(`the cluster script exited ${code}: ${out.slice(-2000)}`)));
  });
}

async function api(method, url, token, body) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': JSON_TYPE },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

let seq = 0;
/** A publishing session for a new project (its `name` added to the answer). */
async function newSession(root, token) {
  const name = `benchcluster${++seq}`;
  return { ...(await api('POST', `${root}/upload/`, token, { meta: META, name, version: '1.0' })), name };
}
const cancel = (token, session) => api('DELETE', session.links.session, token).catch(() => {});

/** autocannon for `duration` seconds; requests per second, latencies, failures. */
async function cannon(opts, { connections, duration }) {
  const r = await autocannon({ connections, duration, ...opts });
  return { rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, failures: r.non2xx + r.errors + r.timeouts };
}

/** `uploads` concurrent uploads of one `bytes`-long buffer through `root`: MB/s of all of them together. */
async function uploadBurst(root, token, buffer, digest, uploads) {
  const sessions = [];
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: uploads }, async () => {
      const session = await newSession(root, token);
      sessions.push(session);
      const file = await api('POST', session.links.upload, token, {
        meta: META,
        filename: `${session.name}-1.0.tar.gz`,
        size: buffer.length,
        hashes: { sha256: digest },
        mechanism: 'http-post-bytes',
      });
      await uploadHttpPostBytes({ instructions: file.mechanism, body: buffer, authorization: `Bearer ${token}` });
      let doc = await api('POST', file.links.complete, token, { meta: META });
      while (doc.status === 'processing') {
        await new Promise((r) => setTimeout(r, 10));
        doc = await api('GET', file.links['file-upload-session'], token);
      }
      if (doc.status !== 'completed') throw new Error(`completion: ${JSON.stringify(doc)}`);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(sessions.map((s) => cancel(token, s)));
  return (buffer.length * uploads) / 1e6 / seconds;
}

/**
 * Runs the section. `deps`: { root, runs, quick, controlSeconds, connections, stats, rotate, log }.
 * Returns the report entry (`render` in run.mjs prints it).
 */
export async function clusterSection({ root, runs, quick, controlSeconds, connections, stats, rotate }) {
  const uploads = quick ? 4 : 8;
  const mib = quick ? 1 : 8;
  const buffer = randomBytes(mib * 1024 * 1024);
  const digest = createHash('sha256').update(buffer).digest('hex');
  const cluster = await startClusterProcess(root, 3);
  try {
    const { token } = cluster;
    const setups = { one: cluster.nodes[0].origin, three: cluster.proxy };
    const results = { one: { status: [], create: [], upload: [] }, three: { status: [], create: [], upload: [] } };
    const opts = { connections, duration: controlSeconds };
    const measureOnce = async (key) => {
      const base = setups[key];
      // Status of a session that holds one file (as the control section's).
      const statusSession = await newSession(base, token);
      const sessionPath = new URL(statusSession.links.session).pathname;
      results[key].status.push(await cannon({ url: `${base}${sessionPath}`, headers: { authorization: `Bearer ${token}` } }, opts));
      // Create-file-session, spread over 10 publishing sessions.
      const targets = await Promise.all(Array.from({ length: 10 }, () => newSession(base, token)));
      const paths = targets.map((s) => ({ path: new URL(s.links.upload).pathname, name: s.name }));
      let n = 0;
      results[key].create.push(
        await cannon(
          {
            url: `${base}${paths[0].path}`,
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': JSON_TYPE },
            requests: [
              {
                method: 'POST',
                setupRequest: (req) => {
                  const i = ++n;
                  const target = paths[i % paths.length];
                  return {
                    ...req,
                    path: target.path,
                    body: JSON.stringify({
                      meta: META,
                      // A build tag per request: every file of a session needs its own name.
                      filename: `${target.name}-1.0-${i}-py3-none-any.whl`,
                      size: 1024,
                      hashes: { sha256: digest },
                      mechanism: 'http-post-bytes',
                    }),
                  };
                },
              },
            ],
          },
          opts,
        ),
      );
      await Promise.all([statusSession, ...targets].map((s) => cancel(token, s)));
      results[key].upload.push(await uploadBurst(base, token, buffer, digest, uploads));
    };
    // Warm-up (JIT, connections, the database's caches), not recorded.
    for (const key of ['one', 'three']) await cannon({ url: `${setups[key]}/healthz` }, { connections: 8, duration: 1 });
    for (let i = 0; i < runs; i++) for (const key of rotate(['one', 'three'], i)) await measureOnce(key);
    const summary = (key) => ({
      statusRps: stats(results[key].status.map((r) => r.rps)),
      statusP99: stats(results[key].status.map((r) => r.p99)),
      createRps: stats(results[key].create.map((r) => r.rps)),
      createP99: stats(results[key].create.map((r) => r.p99)),
      uploadMbps: stats(results[key].upload),
      failures: [...results[key].status, ...results[key].create].reduce((s, r) => s + r.failures, 0),
    });
    const one = summary('one');
    const three = summary('three');
    return {
      connections,
      seconds: controlSeconds,
      uploads,
      uploadMiB: mib,
      one,
      three,
      statusRatio: three.statusRps.median / one.statusRps.median,
      createRatio: three.createRps.median / one.createRps.median,
      uploadRatio: three.uploadMbps.median / one.uploadMbps.median,
      note: CLUSTER_NOTE,
      runs: results,
    };
  } finally {
    await new Promise((resolve) => {
      if (cluster.child.exitCode !== null) return resolve();
      cluster.child.once('exit', resolve);
      cluster.child.kill('SIGTERM');
    });
  }
}

/** The report's lines for this section (markdown). */
export function renderCluster(c, fmt) {
  const row = (label, x) =>
    `| ${label} | ${fmt(x.statusRps.median)} (p99 ${fmt(x.statusP99.median, 1)} ms) | ${fmt(x.createRps.median)} (p99 ${fmt(x.createP99.median, 1)} ms) | ${fmt(x.uploadMbps.median, 1)} | ${x.failures} |`;
  return [
    '## Cluster: one node direct vs three behind the proxy (PostgreSQL + S3)',
    '',
    `examples/cluster on this machine: three reference-index nodes on one PostgreSQL database and one s3rver bucket, a round-robin proxy in front. "one node" is node-1 reached directly (the others idle). autocannon, ${c.connections} connections, ${c.seconds} s per figure; uploads: ${c.uploads} concurrent http-post-bytes uploads of ${c.uploadMiB} MiB, completed.`,
    '',
    '| setup | session status req/s | create file session req/s | upload MB/s (all together) | failures |',
    '| --- | --- | --- | --- | --- |',
    row('one node, direct', c.one),
    row('three nodes, proxy', c.three),
    `| three ÷ one | ${fmt(c.statusRatio, 2)} | ${fmt(c.createRatio, 2)} | ${fmt(c.uploadRatio, 2)} | |`,
    '',
    `${c.note}`,
    '',
  ];
}
