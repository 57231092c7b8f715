// A host with this plugin in its own process, for the SIGKILL test (restart.test.ts): runs the
// built packages (dist), with the simple index, and prints "READY <url>" once listening and
// "READ <key>" for every blob read. Not part of the package.
//   node test-server.mjs <dataDir> <port>
import 'reflect-metadata';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createServer, FsBlobStore, TokensFileAuth } from '@pep694/server';
import plugin from '../dist/index.js';

const [dataDir, port = '0'] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: test-server.mjs <dataDir> <port>');

async function fsyncPath(path) {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The filesystem store with `adoptFile` (a finished upload becomes the blob by rename), reporting reads. */
class AdoptingFsBlobStore extends FsBlobStore {
  async read(key, range) {
    process.stdout.write(`READ ${key}\n`);
    return super.read(key, range);
  }

  async adoptFile(key, path) {
    const final = join(this.blobDir, ...key.split('/'));
    await fsyncPath(path);
    await mkdir(dirname(final), { recursive: true });
    try {
      await rename(path, final);
    } catch (err) {
      if (err.code === 'EXDEV') return false;
      throw err;
    }
    await fsyncPath(dirname(final));
    await fsyncPath(dirname(path));
    return true;
  }
}

const auth = new TokensFileAuth({ path: join(dataDir, 'tokens.json') });
const server = await createServer({
  config: { dataDir, reaperInterval: 0, index: {} },
  mechanisms: [{ plugin, options: { operator: 'pep694', directory: join(dataDir, 'resumable') } }],
  auth: { authenticator: auth, authorizer: auth, names: auth },
  blobs: new AdoptingFsBlobStore(dataDir),
});
const { url } = await server.listen(Number(port), '127.0.0.1');
process.stdout.write(`READY ${url}\n`);
