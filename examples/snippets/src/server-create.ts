// The first example of packages/server/README.md.
// readme:start
import 'reflect-metadata';
import { createServer } from '@pep694/server';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';

const server = await createServer({
  config: { dataDir: './data' },
  mechanisms: [{ plugin: httpPostBytes, options: {} }], // advertised in this order
});
const { url } = await server.listen(8694, '127.0.0.1');
// readme:end
console.log(url);
