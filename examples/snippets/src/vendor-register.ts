// "Registering it" in examples/vendor-mechanism/README.md.
// readme:start
import 'reflect-metadata';
import { createServer } from '@pep694/server';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import httpFetch from '@example/mechanism-http-fetch';

const server = await createServer({
  config: { dataDir: '/var/lib/pep694' },
  mechanisms: [
    { plugin: httpPostBytes }, // required by the PEP
    {
      plugin: httpFetch,
      options: {
        operator: 'acme', // serves vnd-acme-http-fetch
        allowHosts: ['artifacts.ci.acme.example', '*.releases.acme.example'],
      },
    },
  ],
});
// readme:end
await server.close();
