// The raw peer of the multipart mechanism: a plain node http server that parses each POST with
// busboy and streams its file part through sha256 into a file, fsyncs, and answers 204. No auth,
// no session, no checks. Prints "PORT <port>" on stdout.
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';

const dir = process.argv[2] ?? '/tmp/pep694-bench-raw-busboy';
mkdirSync(dir, { recursive: true });
let n = 0;

const server = createServer((req, res) => {
  const fail = (err) => {
    res.statusCode = 500;
    res.end(String(err));
  };
  let written;
  const bb = busboy({ headers: req.headers });
  bb.on('file', (_name, stream) => {
    const hash = createHash('sha256');
    const path = join(dir, `upload-${process.pid}-${n++}`);
    written = pipeline(stream, new Transform({ transform(chunk, _e, cb) { hash.update(chunk); cb(null, chunk); } }), createWriteStream(path)).then(() => {
      const fd = openSync(path, 'r');
      fsyncSync(fd);
      closeSync(fd);
      rmSync(path);
      return hash.digest('hex');
    });
  });
  bb.on('error', fail);
  bb.on('close', () => {
    written.then((sha256) => {
      res.setHeader('x-sha256', sha256);
      res.statusCode = 204;
      res.end();
    }, fail);
  });
  req.pipe(bb);
});
server.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
