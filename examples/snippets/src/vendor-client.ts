// "The client half" in examples/vendor-mechanism/README.md.
import type { HttpFetchInstructions } from '@example/mechanism-http-fetch/client';
// readme:start
import { requestFetch, HttpFetchError } from '@example/mechanism-http-fetch/client';

try {
  const result = await requestFetch({
    instructions: fileSession.mechanism, // the `mechanism` map of the 202 response
    url: 'https://artifacts.ci.acme.example/builds/1234/demo_pkg-1.0.0-py3-none-any.whl',
    authorization: `Bearer ${token}`,
  });
  console.log(result['bytes-received'], result.hashes); // then POST links.complete
} catch (err) {
  if (err instanceof HttpFetchError) console.error(err.status, err.code, err.problem);
  else throw err;
}
// readme:end

// The file upload session the index answered (202), and the uploader's token.
declare const fileSession: { mechanism: HttpFetchInstructions };
declare const token: string;
