// Test-only composition root for the crash suite (not shipped, not built): the reference index as
// src/main.ts builds it (same createServer, mechanisms, validator, SQLite + filesystem storage),
// plus deterministic fault injection. It runs the built packages (dist/), like `pnpm start`.
//
// The session store and the blob store are the real ones, wrapped in decorators (passed through
// createServer's `store` and `blobs` options) that SIGKILL this process at a chosen point:
//
//   PEP694_CRASH_FAULT =
//     store:<method>:<n>:<before|after>   the n-th call of SessionStore.<method>, before it runs or
//                                         after it resolved (i.e. after the SQLite commit)
//     blob:<method>:<n>:<before|after>    the same for BlobStore.<method> (stage, move, delete, read,
//                                         adoptFile, size, ...)
//     store|blob:<method>:<n>:<when>:<p>  the n-th call whose first argument (a key or id) starts
//                                         with <p>, e.g. blob:delete:1:before:files/ (the first
//                                         delete of a file's permanent bytes): a point by name, not
//                                         by a count that depends on the backend's other calls
//     commit:<n>:<before|after>           the n-th StagingWrite.commit (fsync + rename of staged bytes)
//     staged-bytes:<k>                    once k bytes have been written to staging streams
//     patch:<n>                           when the n-th tus PATCH request arrives
//
// Counting starts once the server listens, so startup work does not shift the kill points; with
// PEP694_CRASH_ARM=signal only once the process gets SIGUSR2 (it answers "ARMED" on stdout), so a
// test can set up its data first and count from the action it means to interrupt. Before dying the
// process writes "KILLED <fault> <op>(<first argument>)" to stdout, so a test can tell an injected
// kill from a crash of its own, and see which call it hit. Other variables:
//   PEP694_CRASH_CONFIG        JSON merged into the server config (short TTLs, reaperInterval, limits)
//   PEP694_CRASH_PUBLISH_CHECK 1: a publish check that re-hashes every file (publishing is deferred)
//   PEP694_CRASH_SHARED_TUS    1: tus uploads as main.ts keeps them with PEP694_DATABASE_URL and an
//                              s3:// PEP694_BLOBS: in the bucket under tus/, locked in PostgreSQL
//                              (tus-shared.ts); otherwise, and by default, under <PEP694_DATA>/tus
//   PEP694_CRASH_REAP          1: one full reaper pass (blob sweep included) once listening; its
//                              result is printed as "REAPED <json>" before "READY <url>"; on a
//                              shared store it sweeps blobs and tus uploads no record names as if
//                              they were older than the temp threshold (the killed process was
//                              the only other node)
// and those of main.ts: PEP694_DATA, PEP694_PORT, PEP694_TOKENS_FILE, PEP694_VALIDATE_ARTIFACTS,
// PEP694_DATABASE_URL (sessions in PostgreSQL instead of SQLite) and PEP694_BLOBS (bytes in an
// s3:// bucket instead of files), read as main.ts reads them; the faults wrap either store alike.
//
// With PEP694_CRASH_WARM=1 the process loads its modules and then waits for one line of JSON on
// stdin with the variables above, so a test can start the next server while the current one runs
// (loading the modules is most of a start; the machine is a loaded 2-core one).
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { distributionIdentity } from '@pep694/core';
import { createDistributionValidator } from '@pep694/dist-validator';
import { createServer, FsBlobStore, SqliteSessionStore } from '@pep694/server';
import { blobsFromEnv } from '../../dist/blobs.js';
import { defaultMechanisms } from '../../dist/mechanisms.js';
import { sessionStoreFromEnv } from '../../dist/session-store.js';
import { sharedTusFromEnv } from '../../dist/tus-shared.js';

if (process.env.PEP694_CRASH_WARM === '1') {
  const lines = createInterface({ input: process.stdin });
  const [line] = await lines[Symbol.asyncIterator]()
    .next()
    .then((r) => (r.done ? [] : [r.value]));
  lines.close();
  if (!line) process.exit(0); // the test ended without needing this spare
  Object.assign(process.env, JSON.parse(line));
}

const dataDir = resolve(process.env.PEP694_DATA ?? 'data');
const port = Number(process.env.PEP694_PORT ?? 0);
const fault = parseFault(process.env.PEP694_CRASH_FAULT);
let armed = false;
const calls = new Map();
let stagedBytes = 0;

function parseFault(text) {
  if (!text) return undefined;
  const parts = text.split(':');
  const num = (s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bad PEP694_CRASH_FAULT ${text}`);
    return n;
  };
  switch (parts[0]) {
    case 'store':
    case 'blob':
      return {
        text,
        kind: 'call',
        op: `${parts[0]}.${parts[1]}`,
        n: num(parts[2]),
        when: parts[3] === 'after' ? 'after' : 'before',
        ...(parts[4] ? { arg: parts.slice(4).join(':') } : {}),
      };
    case 'commit':
      return { text, kind: 'call', op: 'staging.commit', n: num(parts[1]), when: parts[2] === 'after' ? 'after' : 'before' };
    case 'staged-bytes':
      return { text, kind: 'bytes', k: num(parts[1]) };
    case 'patch':
      return { text, kind: 'patch', n: num(parts[1]) };
    default:
      throw new Error(`bad PEP694_CRASH_FAULT ${text}`);
  }
}

function die(what = '') {
  writeSync(1, `KILLED ${fault.text}${what && ` ${what}`}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** Kills the process if this call of `op` (numbered by `count`) is the chosen point. */
function point(op, when, nth, args = []) {
  if (armed && fault?.kind === 'call' && fault.op === op && fault.when === when && fault.n === nth) die(`${op}(${String(args[0])})`);
}

/** Numbers a call of `op`; a fault with an argument prefix counts only the calls it names (0: not counted). */
function count(op, args = []) {
  if (!armed) return 0;
  if (fault?.arg !== undefined && fault.op === op && !String(args[0]).startsWith(fault.arg)) return 0;
  const n = (calls.get(op) ?? 0) + 1;
  calls.set(op, n);
  return n;
}

/** Wraps every async method of `target` (called on the target itself: FsBlobStore has private fields). */
function decorate(prefix, target, special = {}) {
  return new Proxy(target, {
    get(t, prop) {
      const value = t[prop];
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      if (special[prop]) return special[prop];
      if (prop === 'list') return value.bind(t); // an async generator: nothing to kill around
      return async (...args) => {
        const op = `${prefix}.${prop}`;
        const nth = count(op, args);
        point(op, 'before', nth, args);
        const result = await value.apply(t, args);
        point(op, 'after', nth, args);
        return result;
      };
    },
  });
}

const rawStore =
  (await sessionStoreFromEnv()) ?? new SqliteSessionStore(join(dataDir, 'pep694.sqlite'), { fileIdentity: distributionIdentity });
const store = decorate('store', rawStore);
const rawBlobs = (await blobsFromEnv()).blobs ?? (await FsBlobStore.open(dataDir));
/** True during the restart's own reaper pass (PEP694_CRASH_REAP): what it sweeps counts as aged. */
let startupSweep = false;
const AGED = new Date(0);
const blobs = decorate('blob', rawBlobs, {
  async lastModified(key) {
    return startupSweep ? AGED : rawBlobs.lastModified?.(key);
  },
  async stage(key) {
    const nth = count('blob.stage', [key]);
    point('blob.stage', 'before', nth, [key]);
    const staging = await rawBlobs.stage(key);
    point('blob.stage', 'after', nth, [key]);
    const { stream } = staging;
    const write = stream.write.bind(stream);
    // Staged bytes are counted as the writer hands them over: the kill lands between two chunks.
    stream.write = (chunk, ...rest) => {
      stagedBytes += chunk.length;
      if (armed && fault?.kind === 'bytes' && stagedBytes >= fault.k) die();
      return write(chunk, ...rest);
    };
    return {
      stream,
      abort: () => staging.abort(),
      async commit() {
        const n = count('staging.commit');
        point('staging.commit', 'before', n);
        await staging.commit();
        point('staging.commit', 'after', n);
      },
    };
  },
});

/** A mechanism whose sweep, during the restart's pass, reports every upload as aged (see PEP694_CRASH_REAP). */
function agedDuringStartupSweep(mechanism) {
  if (!mechanism.sweep) return mechanism;
  const sweep = mechanism.sweep.bind(mechanism);
  mechanism.sweep = (keep) => sweep((fileId, createdAt) => keep(fileId, startupSweep ? AGED : createdAt));
  return mechanism;
}

const overrides = process.env.PEP694_CRASH_CONFIG ? JSON.parse(process.env.PEP694_CRASH_CONFIG) : {};
const sha256Of = async (key) => {
  const hash = createHash('sha256');
  for await (const chunk of await blobs.read(key)) hash.update(chunk);
  return hash.digest('hex');
};
const server = await createServer({
  config: { dataDir, index: {}, legacy: {}, ...overrides },
  mechanisms: defaultMechanisms(dataDir, {
    tus: process.env.PEP694_CRASH_SHARED_TUS === '1' ? sharedTusFromEnv() : undefined,
  }),
  validators: process.env.PEP694_VALIDATE_ARTIFACTS === '0' ? [] : [createDistributionValidator()],
  store,
  blobs,
  // An operator's pre-publish check (e.g. a scan): re-reads every file and compares its sha256.
  ...(process.env.PEP694_CRASH_PUBLISH_CHECK === '1'
    ? {
        publishChecks: [
          async (_session, files) => {
            for (const f of files) {
              if (f.hashes.sha256 && (await sha256Of(f.blobKey)) !== f.hashes.sha256)
                return { ok: false, notices: [`${f.filename} changed on disk`] };
            }
            return { ok: true };
          },
        ],
      }
    : {}),
});
// The mechanisms the host resolved from the plugins (what its reaper sweeps), not the registrations.
server.mechanisms.forEach(agedDuringStartupSweep);
const { url, server: http } = await server.listen(port, '127.0.0.1');
http.prependListener('request', (req) => {
  if (armed && fault?.kind === 'patch' && req.method === 'PATCH' && count('http.patch') === fault.n) die();
});
if (process.env.PEP694_CRASH_REAP === '1') {
  // On a store nodes share (PostgreSQL), the killed process may have died holding the reaper's
  // lease, and a pass under another owner's lease is skipped: wait (bounded) until the lease is
  // this process's, as the next pass of a live node would once the dead one's ran out.
  if (rawStore.acquireLease) {
    const deadline = Date.now() + 30_000;
    while (!(await rawStore.acquireLease('reaper', server.service.leases.owner, server.config.workLeaseTtl)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // ... and its pass takes what no record names at once, as on SQLite: the harness's one other
  // node is the killed one, so a staged key or tus upload without a record is a crash's leftover,
  // however young (a live node would take it once older than the temp threshold; see reaper.ts).
  startupSweep = true;
  const reaped = await server.reap().finally(() => (startupSweep = false));
  process.stdout.write(`REAPED ${JSON.stringify(reaped)}\n`);
}
if (process.env.PEP694_CRASH_ARM === 'signal') {
  process.once('SIGUSR2', () => {
    armed = true;
    writeSync(1, 'ARMED\n');
  });
} else armed = true;
process.stdout.write(`READY ${url}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
