// s3rver for the S3 rows of the bench, in its own process (so that its CPU is its own): one
// bucket, the environment a host needs to use it (PEP694_BLOBS, credentials) and s3rver's data
// directory, printed as "S3ENV <base64url JSON>" once it listens. SIGTERM stops it and removes
// its data.
//
// For timing what a step costs inside s3rver, a second loopback port (`log` in the JSON) answers
// `GET /take` with every request s3rver answered since the last take (method, query, bytes,
// server-side copy or not, milliseconds from arrival to answer), the milliseconds s3rver spent
// in garbage collection and the longest event-loop delay since then, and starts over.
import { createServer } from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { startS3rver } from '@pep694/blobs-s3/testing';

const s3 = await startS3rver();
const { bucket, env } = await s3.blobsEnv('bench');
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const log = createServer((req, res) => {
  const requests = s3.requests.splice(0).map((r) => ({
    method: r.method,
    path: r.path,
    query: r.query,
    copy: r.copy,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    ms: r.end - r.start,
  }));
  const taken = { requests, gcMs, loopDelayMaxMs: loop.max / 1e6 };
  gcMs = 0;
  loop.reset();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(req.url === '/take' ? taken : {}));
});
await new Promise((resolve) => log.listen(0, '127.0.0.1', resolve));
const info = { bucket, env, directory: s3.directory, log: `http://127.0.0.1:${log.address().port}/take` };
console.log(`S3ENV ${Buffer.from(JSON.stringify(info)).toString('base64url')}`);
process.on('SIGTERM', () => {
  log.close();
  s3.close().then(() => process.exit(0));
});
