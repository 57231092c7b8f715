// The `client` section of `pnpm bench`: the `pep694` command (packages/client, its own process)
// next to the same flow driven by curl, on our host (pep694-server.mjs):
//
// - one file of each size through `pep694 upload --mechanism http-post-bytes` (it hashes the file,
//   creates the session and the file upload session, POSTs the bytes, completes, publishes), and
//   the same with `openssl dgst -sha256` for the hash, curl (`-T`, streamed) for the bytes and fetch from
//   this process for the five small JSON requests (`openssl dgst -sha256` for the hash): wall time, MB/s, client CPU s/GB (the child
//   processes' user+system time from bash's `times`, plus this process's CPU for curl's JSON
//   requests), server CPU s/GB;
// - a release of one sdist and 20 wheels (1 MiB each) with `--parallel 4` next to `--parallel 1`;
// - the same release as real archives (twine reads their metadata) through `pep694 upload` next to
//   `twine upload` (`/usr/bin/python3 -m twine`, Debian's) to the legacy API (/legacy/) of the same
//   server: wall time of each command, archives built beforehand (not timed), with the same flow
//   through minimal-client.mjs beside them (the floor of any client against this server). Skipped
//   (with a note) where twine is missing;
// - the same three again through delay-proxy.mjs (ctx.rttMs round trips, as over a network).
//
// Runs alternate which flow goes first (the release comparison: balancedOrder).
import { spawn, spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDelayProxy } from './delay-proxy.mjs';

// The command runs as its users run it: `node <bin>`, without the flags the bench gives servers
// (--max-semi-space-size=8). For a process this short, a young generation allowed to grow that
// large only touched more fresh pages: a 21-file release took 0.470 s with the flag and 0.446 s
// without (medians of 12, alternating).

/** Runs a bash script (`args` are its "$@"); resolves with its children's CPU seconds (from `times`) and the wall time. */
export function bash(script, env = {}, args = []) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('bash', ['-c', `${script}\ncode=$?\ntimes >&3\nexit $code`, 'bash', ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    let times = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.stdio[3].on('data', (d) => (times += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`bash exited ${code}: ${err || out}`));
      // `times`: the shell's own user/system, then its children's.
      const secs = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolve({ seconds, cpu: secs.reduce((a, b) => a + b, 0), out, err });
    });
  });
}

export async function clientSection(ctx) {
  const { startOurs, procUsage, stats, paired, file, bytes, runs, work, cli, META } = ctx;
  const srv = await startOurs('client');
  const dir = join(work, `client-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  let seq = 0;
  const ours = [];
  const curl = [];
  const selfCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const api = async (method, url, body) => {
    const res = await fetch(url, {
      method,
      headers: { authorization: srv.auth, 'content-type': 'application/vnd.pypi.upload.v2+json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const named = (name) => {
    const p = join(dir, `${name}-1.0.tar.gz`);
    linkSync(file.path, p);
    return p;
  };

  const runOurs = async () => {
    const path = named(`benchcli${seq++}`);
    const s0 = procUsage(srv.child.pid).cpu;
    const r = await bash(
      `node "$CLI" upload --repository-url "$URL" --mechanism http-post-bytes --json --cache-dir "$CACHE" "$FILE" >/dev/null`,
      { CLI: cli, URL: srv.url, CACHE: join(dir, 'cache'), FILE: path, PEP694_TOKEN: srv.token, PEP694_PYPIRC: '/nonexistent' },
    );
    const serverCpu = procUsage(srv.child.pid).cpu - s0;
    rmSync(path);
    ours.push({
      seconds: r.seconds,
      mbps: bytes / 1e6 / r.seconds,
      clientCpuPerGB: r.cpu / (bytes / 1e9),
      cpuPerGB: serverCpu / (bytes / 1e9),
    });
  };
  const runCurl = async () => {
    const name = `benchcurl${seq++}`;
    const path = named(name);
    const s0 = procUsage(srv.child.pid).cpu;
    const c0 = selfCpu();
    const t0 = process.hrtime.bigint();
    // openssl, not coreutils' sha256sum: it uses the CPU's SHA instructions, as node's crypto does.
    const hash = await bash('openssl dgst -sha256 -r "$FILE"', { FILE: path });
    const sha256 = hash.out.split(' ')[0];
    const session = await api('POST', srv.url, { meta: META, name, version: '1.0' });
    const fs = await api('POST', session.links.upload, {
      meta: META,
      filename: `${name}-1.0.tar.gz`,
      size: bytes,
      hashes: { sha256 },
      mechanism: 'http-post-bytes',
    });
    const sent = await bash(
      'curl -sS -f -X POST -T "$FILE" -H "Authorization: $AUTH" -H "Content-Type: application/octet-stream" -H "Expect:" "$URL" -o /dev/null',
      { FILE: path, AUTH: srv.auth, URL: fs.mechanism.file_url },
    );
    await api('POST', fs.links.complete, { meta: META });
    await api('POST', session.links.publish, { meta: META });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const clientCpu = hash.cpu + sent.cpu + (selfCpu() - c0);
    const serverCpu = procUsage(srv.child.pid).cpu - s0;
    rmSync(path);
    curl.push({
      seconds,
      mbps: bytes / 1e6 / seconds,
      clientCpuPerGB: clientCpu / (bytes / 1e9),
      hashCpuPerGB: hash.cpu / (bytes / 1e9),
      transferCpuPerGB: sent.cpu / (bytes / 1e9),
      cpuPerGB: serverCpu / (bytes / 1e9),
    });
  };

  // Warm-up (not timed): a cold server and a cold page cache would favour whoever runs second.
  await runOurs();
  await runCurl();
  ours.length = 0;
  curl.length = 0;
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      await runOurs();
      await runCurl();
    } else {
      await runCurl();
      await runOurs();
    }
  }

  // A release of one sdist and 20 wheels, 1 MiB each: --parallel 4 next to --parallel 1.
  const small = await ctx.makeFile(1024 * 1024, 'client-release');
  const release = async (parallel) => {
    const name = `benchrel${seq++}`;
    const rdir = join(dir, name);
    mkdirSync(rdir);
    const paths = [join(rdir, `${name}-1.0.tar.gz`)];
    for (let i = 0; i < 20; i++) paths.push(join(rdir, `${name}-1.0-py3-none-manylinux_2_${i + 17}_x86_64.whl`));
    for (const p of paths) linkSync(small.path, p);
    const r = await bash(
      `node "$CLI" upload --repository-url "$URL" --parallel ${parallel} --json --cache-dir "$CACHE" ${paths.map((p) => `"${p}"`).join(' ')} >/dev/null`,
      { CLI: cli, URL: srv.url, CACHE: join(dir, 'cache'), PEP694_TOKEN: srv.token, PEP694_PYPIRC: '/nonexistent' },
    );
    rmSync(rdir, { recursive: true, force: true });
    return r.seconds;
  };
  await release(4); // warm-up
  const p4 = [];
  const p1 = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      p4.push(await release(4));
      p1.push(await release(1));
    } else {
      p1.push(await release(1));
      p4.push(await release(4));
    }
  }
  rmSync(small.path, { force: true });

  const twine = await twineComparison({ srv, dir, runs, fileBytes: 1024 * 1024, cli, bashRun: bash, seq: () => seq++ });
  await srv.stop();

  // The same comparison with round trips of a network (ctx.rttMs): a host whose links name the proxy.
  let twineRtt;
  if (twine && ctx.rttMs > 0) {
    const proxy = await startDelayProxy(ctx.rttMs / 2);
    const behind = await startOurs('client-rtt', { env: { BENCH_PUBLIC_URL: `http://127.0.0.1:${proxy.port}/` } });
    proxy.target(behind.port);
    try {
      const url = new URL(behind.url);
      url.port = String(proxy.port);
      const proxied = { ...behind, url: url.href };
      twineRtt = await twineComparison({ srv: proxied, dir, runs, fileBytes: 1024 * 1024, cli, bashRun: bash, seq: () => seq++ });
    } finally {
      await behind.stop();
      await proxy.close();
    }
  }

  rmSync(dir, { recursive: true, force: true });

  // One release comparison's wall times, with per-run ratios of the runs of one round (run i against run i).
  const comparison = (t) => ({
    pep694: stats(t.pep694),
    twine: stats(t.twine),
    minimal: stats(t.minimal),
    ratio: stats(t.pep694.map((x, i) => x / t.twine[i])),
    minimalRatio: stats(t.minimal.map((x, i) => x / t.twine[i])),
    pep694OverMinimal: stats(t.pep694.map((x, i) => x / t.minimal[i])),
    ...(t.pep694NoExtraCa && {
      pep694NoExtraCa: stats(t.pep694NoExtraCa),
      ratioNoExtraCa: stats(t.pep694NoExtraCa.map((x, i) => x / t.twine[i])),
    }),
  });
  const sum = (rs) => ({
    seconds: stats(rs.map((r) => r.seconds)),
    mbps: stats(rs.map((r) => r.mbps)),
    clientCpuPerGB: stats(rs.map((r) => r.clientCpuPerGB)),
    cpuPerGB: stats(rs.map((r) => r.cpuPerGB)),
    hashCpuPerGB: stats(rs.map((r) => r.hashCpuPerGB)),
    transferCpuPerGB: stats(rs.map((r) => r.transferCpuPerGB)),
  });
  return {
    sizeMiB: bytes / 1024 ** 2,
    ours: sum(ours),
    curl: sum(curl),
    throughputRatio: paired(ours, curl, 'mbps'),
    clientCpuRatio: paired(ours, curl, 'clientCpuPerGB'),
    release: {
      files: 21,
      fileMiB: 1,
      parallel4: stats(p4),
      parallel1: stats(p1),
      ratio: stats(p4.map((x, i) => x / p1[i])),
    },
    twine: twine && { files: 21, fileMiB: 1, ...comparison(twine) },
    twineRtt: twineRtt && { rttMs: ctx.rttMs, ...comparison(twineRtt) },
    twineSkipped: twine ? undefined : 'twine is not installed (/usr/bin/python3 -m twine)',
  };
}

const PYTHON = '/usr/bin/python3';
const MINIMAL_CLIENT = fileURLToPath(new URL('./minimal-client.mjs', import.meta.url));

/**
 * Writes a release as twine needs it: one sdist (`<name>-<version>/PKG-INFO` in a tar.gz) and 20
 * wheels (`<name>.dist-info/METADATA`, `WHEEL`, `RECORD`; one per manylinux tag), each padded with
 * `fileBytes` random bytes stored uncompressed so that every file is about that size.
 */
function writeRealRelease(rdir, name, version, fileBytes) {
  const script = String.raw`
import io, os, sys, tarfile, zipfile
rdir, name, ver, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
meta = f'Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\nSummary: bench release\n'.encode()
paths = []
sdist = os.path.join(rdir, f'{name}-{ver}.tar.gz')
with tarfile.open(sdist, 'w:gz', compresslevel=1) as t:
    for arc, data in ((f'{name}-{ver}/PKG-INFO', meta), (f'{name}-{ver}/pad.bin', os.urandom(size))):
        info = tarfile.TarInfo(arc); info.size = len(data); t.addfile(info, io.BytesIO(data))
paths.append(sdist)
for i in range(20):
    tag = f'py3-none-manylinux_2_{i + 17}_x86_64'
    whl = os.path.join(rdir, f'{name}-{ver}-{tag}.whl')
    di = f'{name}-{ver}.dist-info'
    with zipfile.ZipFile(whl, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(f'{name}/pad.bin', os.urandom(size))
        z.writestr(f'{di}/METADATA', meta)
        z.writestr(f'{di}/WHEEL', f'Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\nTag: {tag}\n')
        z.writestr(f'{di}/RECORD', '')
    paths.append(whl)
print('\n'.join(paths))
`;
  const r = spawnSync(PYTHON, ['-c', script, rdir, name, version, String(fileBytes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`writing the release ${name}: ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

/**
 * The issue's comparison: a release of one sdist and 20 wheels through `pep694 upload` (default
 * --parallel 8, the server's preferred mechanism, published) and through `twine upload` to the
 * legacy API of the same server (one request per file, each published at once), with
 * minimal-client.mjs beside them: the same Upload 2.0 flow with nothing but the requests (the floor
 * any client reaches against this server on this machine). Resolves with the wall seconds of each
 * run, or undefined without twine. Each round runs the commands in its own order (`balancedOrder`).
 */
async function twineComparison({ srv, dir, runs, fileBytes, cli, bashRun, seq }) {
  if (spawnSync(PYTHON, ['-m', 'twine', '--version']).status !== 0) return undefined;
  const legacyUrl = new URL('/legacy/', srv.url).href;
  // One project, a new version per run: the host limits how many new project names a principal registers per hour.
  const name = 'benchtwine';
  const upload2 = { URL: srv.url, PEP694_TOKEN: srv.token };
  const commands = {
    pep694: [
      `node "$CLI" upload --repository-url "$URL" --json --cache-dir "$CACHE" "$@" >/dev/null`,
      { ...upload2, CLI: cli, CACHE: join(dir, 'cache'), PEP694_PYPIRC: '/nonexistent' },
    ],
    minimal: [`node "$MINIMAL" "$URL" "$@"`, { ...upload2, MINIMAL: MINIMAL_CLIENT }],
    twine: [
      // Credentials through twine's environment variables: a token that starts with '-' (the
      // bench's are random base64url) would be read as an option after -p.
      `${PYTHON} -m twine upload --repository-url "$URL" --non-interactive --disable-progress-bar "$@" >/dev/null`,
      { URL: legacyUrl, TWINE_USERNAME: '__token__', TWINE_PASSWORD: srv.token, HOME: dir, TWINE_CERT: '' },
    ],
  };
  const once = async (tool) => {
    const version = `1.0.${seq()}`;
    const rdir = join(dir, `${name}-${version}`);
    mkdirSync(rdir);
    const paths = writeRealRelease(rdir, name, version, fileBytes);
    // Every command starts with nothing waiting to be written back: neither the release just
    // written nor what the runs before left (the 1 GiB flows write several GiB just before), whose
    // writeback would otherwise compete with the server's fsyncs in whichever run it fell on.
    spawnSync('sync');
    const [script, env] = commands[tool];
    // The paths as the script's arguments ("$@"): `bash -c script bash <paths>`.
    const r = await bashRun(script, env, paths);
    rmSync(rdir, { recursive: true, force: true });
    return r.seconds;
  };
  // Node 20 reads its whole CA store before the first line of any script when NODE_EXTRA_CA_CERTS
  // is set (nodejs/node#40524: about 40 ms per process on the bench machine), though an http://
  // index never uses it. Where it is set, the command runs a second time in each round without it,
  // so that the report can say what the variable costs; the target stays measured as given.
  if (process.env.NODE_EXTRA_CA_CERTS) commands.pep694NoExtraCa = [commands.pep694[0], { ...commands.pep694[1], NODE_EXTRA_CA_CERTS: '' }];
  const tools = Object.keys(commands);
  // Warm-up (not timed): python's and node's first start read their files from disk.
  for (const tool of tools) await once(tool);
  const times = Object.fromEntries(tools.map((t) => [t, []]));
  for (let i = 0; i < runs; i++) {
    for (const k of balancedOrder(tools.length, i)) {
      const tool = tools[k];
      times[tool].push(await once(tool));
    }
  }
  return times;
}

/**
 * The order of round `i` of `n` commands: a Williams design, in which over n rounds (2n when n
 * is odd) every command goes first equally often and follows every other command equally often.
 * A plain rotation (command k + i) has each command always follow the same one: with four, the
 * command with NODE_EXTRA_CA_CERTS unset always came right after twine, `pep694 upload` after it,
 * and the minimal client after `pep694 upload`, so whatever a run leaves behind (the server's
 * work after it answered, the page cache) always fell on the same next command.
 */
export function balancedOrder(n, i) {
  // 0, 1, n-1, 2, n-2, …: each difference between neighbours (mod n) occurs once.
  const first = [0];
  for (let lo = 1, hi = n - 1; first.length < n; lo++, hi--) {
    first.push(lo);
    if (first.length < n) first.push(hi);
  }
  const row = first.map((k) => (k + i) % n);
  return n % 2 === 1 && Math.floor(i / n) % 2 === 1 ? row.reverse() : row;
}
