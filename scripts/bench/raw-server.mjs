// The raw peer of http-post-bytes: a plain node http server that streams each POST body to a
// file while hashing it with sha256, fsyncs, and answers 204. Also a discard mode (the loopback
// floor). Prints its port on stdout.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, openSync, fsyncSync, closeSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const mode = process.argv[2] ?? 'disk';
const dir = process.argv[3] ?? '/tmp/pep694-bench-raw';
mkdirSync(dir, { recursive: true });
let n = 0;

const server = createServer(async (req, res) => {
  try {
    if (mode === 'discard') {
      await pipeline(req, new Writable({ write: (_c, _e, cb) => cb() }));
    } else {
      const hash = createHash('sha256');
      const path = join(dir, `upload-${process.pid}-${n++}`);
      await pipeline(
        req,
        new Transform({ transform(chunk, _e, cb) { hash.update(chunk); cb(null, chunk); } }),
        createWriteStream(path),
      );
      const fd = openSync(path, 'r');
      fsyncSync(fd);
      closeSync(fd);
      res.setHeader('x-sha256', hash.digest('hex'));
      rmSync(path);
    }
    res.statusCode = 204;
    res.end();
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
});
server.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
