// The raw peers of the bench, each in its own process (so that its CPU and peak RSS are its own).
// No auth, no sessions, no checks: the least a server can do for the same work.
//
//   node raw-server.mjs <mode> [dir]
//
// Modes:
//   discard      POST body read and dropped (the loopback floor).
//   http         plain node http: POST body → sha256 Transform → file, fsync, 204 + x-sha256
//                (the peer of http-post-bytes).
//   busboy       node http → busboy → file part → sha256 Transform → file, fsync, 204 + x-sha256
//                (the peer of vnd-*-multipart).
//   tus-stream   @tus/server + @tus/file-store at /files, hashing every PATCH body in the stream
//                (hash state per upload); at the last PATCH: fsync, 204 + x-sha256.
//   tus-reread   @tus/server + @tus/file-store at /files; at the last PATCH: fsync, read the file
//                back through sha256, 204 + x-sha256 (the peer to beat by 1.3×).
//   express      a bare express 5 app: GET /status answers a JSON document the size of a session
//                status; POST /files parses a JSON body and answers 201 with JSON (the control
//                plane's baseline).
// Files are fsynced before answering and deleted once hashed (all off the event loop). Prints "PORT <port>" on stdout.
//
// BENCH_PRELOAD=import loads @pep694/server and the three plugins first (unused), and
// BENCH_PRELOAD=server also starts our host on another port (idle), to tell the cost of a
// heavier process from the cost of our code path.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { PassThrough, pipeline as pipeStreams, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const mode = process.argv[2] ?? 'http';
const dir = process.argv[3] ?? join('/tmp', `pep694-bench-raw-${process.pid}`);
mkdirSync(dir, { recursive: true });
let n = 0;

if (process.env.BENCH_PRELOAD) {
  await import('reflect-metadata');
  const { createServer: createHost, TokensFileAuth } = await import('@pep694/server');
  const plugins = await Promise.all(
    ['@pep694/mechanism-http-post-bytes', '@pep694/mechanism-multipart', '@pep694/mechanism-tus'].map((m) => import(m)),
  );
  if (process.env.BENCH_PRELOAD === 'server') {
    const { pino } = await import('pino');
    const auth = new TokensFileAuth({ tokens: [{ token: 'preload-token-0123456789', principal: 'bench', projects: ['*'] }] });
    const host = await createHost({
      config: { dataDir: join(dir, 'preload-data'), reaperInterval: 0 },
      auth: { authenticator: auth, authorizer: auth, names: auth },
      mechanisms: [
        { plugin: plugins[0].default, options: {} },
        { plugin: plugins[1].default, options: { operator: 'bench' } },
        { plugin: plugins[2].default, options: { operator: 'bench', directory: join(dir, 'preload-data', 'tus') } },
      ],
      logger: pino({ level: 'warn' }),
    });
    await host.listen(0, '127.0.0.1');
  }
}

const hashTap = (hash) =>
  new Transform({
    transform(chunk, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
/** fsync, off the event loop (as our host does), so that one upload's fsync never stalls the others. */
async function fsyncPath(path) {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
const fail = (res, err) => {
  res.statusCode = 500;
  res.end(String(err));
};

/** Streams `source` through sha256 into a new file, fsyncs, deletes it; resolves with the hex digest. */
async function store(source) {
  const hash = createHash('sha256');
  const path = join(dir, `upload-${process.pid}-${n++}`);
  await pipeline(source, hashTap(hash), createWriteStream(path));
  await fsyncPath(path);
  await rm(path);
  return hash.digest('hex');
}

let handler;
if (mode === 'discard') {
  handler = async (req, res) => {
    await pipeline(req, new Writable({ write: (_c, _e, cb) => cb() }));
    res.statusCode = 204;
    res.end();
  };
} else if (mode === 'http') {
  handler = async (req, res) => {
    try {
      res.setHeader('x-sha256', await store(req));
      res.statusCode = 204;
      res.end();
    } catch (err) {
      fail(res, err);
    }
  };
} else if (mode === 'busboy') {
  const { default: busboy } = await import('busboy');
  handler = (req, res) => {
    let written;
    const bb = busboy({ headers: req.headers });
    bb.on('file', (_name, stream) => {
      written = store(stream);
    });
    bb.on('error', (err) => fail(res, err));
    bb.on('close', () => {
      if (!written) return fail(res, 'no file part');
      written.then(
        (sha256) => {
          res.setHeader('x-sha256', sha256);
          res.statusCode = 204;
          res.end();
        },
        (err) => fail(res, err),
      );
    });
    req.pipe(bb);
  };
} else if (mode === 'tus-stream' || mode === 'tus-reread') {
  const { Server } = await import('@tus/server');
  const { FileStore } = await import('@tus/file-store');
  const states = new Map(); // upload id → sha256 of the bytes written so far, in order
  class StreamHashingFileStore extends FileStore {
    write(readable, id, offset) {
      let state = states.get(id);
      if (!state) states.set(id, (state = { hash: createHash('sha256'), offset: 0 }));
      if (state.offset !== offset) throw new Error(`out-of-order PATCH at ${offset}, hashed up to ${state.offset}`);
      const tap = new Transform({
        transform(chunk, _e, cb) {
          state.hash.update(chunk);
          state.offset += chunk.length;
          cb(null, chunk);
        },
      });
      // pipeline (not pipe) so that an aborted PATCH body also ends the write with an error.
      return super.write(
        pipeStreams(readable, tap, () => {}),
        id,
        offset,
      );
    }
  }
  const datastore = mode === 'tus-stream' ? new StreamHashingFileStore({ directory: dir }) : new FileStore({ directory: dir });
  const tus = new Server({
    path: '/files',
    datastore,
    async onUploadFinish(_req, upload) {
      const path = join(dir, upload.id);
      await fsyncPath(path);
      let sha256;
      if (mode === 'tus-stream') {
        sha256 = states.get(upload.id).hash.digest('hex');
        states.delete(upload.id);
      } else {
        const hash = createHash('sha256');
        await pipeline(createReadStream(path), hashTap(hash), new PassThrough().resume());
        sha256 = hash.digest('hex');
      }
      await rm(path, { force: true });
      await rm(`${path}.json`, { force: true });
      return { headers: { 'x-sha256': sha256 } };
    },
  });
  handler = (req, res) => tus.handle(req, res);
} else if (mode === 'express') {
  const { default: express } = await import('express');
  const app = express();
  // About the size and shape of a session status document with one file.
  const doc = {
    meta: { 'api-version': '2.0' },
    links: Object.fromEntries(
      ['session', 'upload', 'publish', 'extend'].map((k) => [k, `http://127.0.0.1/upload/sessions/gaC1li9EjKhyLEBxbMFt2A/${k}`]),
    ),
    mechanisms: ['http-post-bytes', 'vnd-bench-multipart', 'vnd-bench-tus'],
    'expires-at': '2026-12-02T14:09:19Z',
    status: 'open',
    files: { 'benchpkg-1.0-1-py3-none-any.whl': { status: 'pending', link: 'http://127.0.0.1/upload/files/IKf7igxqm86Oh5aZJmWm_w' } },
  };
  app.get('/status', (_req, res) => res.json(doc));
  app.post('/files', express.json({ type: () => true }), (req, res) => res.status(201).json({ ...doc, filename: req.body.filename }));
  handler = app;
} else {
  throw new Error(`unknown mode ${mode}`);
}

const server = createServer(handler);
server.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
process.on('SIGTERM', () => {
  server.closeAllConnections?.();
  server.close(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
