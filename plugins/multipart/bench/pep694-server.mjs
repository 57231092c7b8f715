// Our host as the benchmark runs it: @pep694/server with the multipart mechanism only and no
// artifact validators (the bench uploads random bytes). Prints "ROOT <url>" on stdout.
import 'reflect-metadata';
import { createServer, TokensFileAuth } from '@pep694/server';
import multipart from '@pep694/mechanism-multipart';

const dataDir = process.argv[2];
const token = process.argv[3];
const auth = new TokensFileAuth({ tokens: [{ token, principal: 'bench', projects: ['*'] }] });
const server = await createServer({
  config: { dataDir, reaperInterval: 0, limits: { maxFileSize: 8 * 1024 ** 3, maxLiveSessionsPerPrincipal: 10_000 } },
  auth: { authenticator: auth, authorizer: auth, names: auth },
  mechanisms: [{ plugin: multipart, options: { operator: 'bench' } }],
});
const { url } = await server.listen(0, '127.0.0.1');
console.log(`ROOT ${url}`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
