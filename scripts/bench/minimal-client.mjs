// The least an Upload 2.0 client can do for a release, as the floor the `client` section measures
// `pep694 upload` against (which part of a release's time is the client's, which the server's):
// node's http with keep-alive, each file read once and hashed, then create the file upload session,
// POST the bytes (http-post-bytes), complete; eight files in flight (the command's default); then
// publish. No command line parsing, local state, progress, retries, attestations or error
// handling beyond failing: not a client anyone should use, only a measure.
//
//   PEP694_TOKEN=… node minimal-client.mjs <root URL> <dist>...
//
// Every dist belongs to one release (name and version from the first file's name).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { basename } from 'node:path';

const [root, ...paths] = process.argv.slice(2);
const PARALLEL = 8;
const agent = new http.Agent({ keepAlive: true });
const auth = `Bearer ${process.env.PEP694_TOKEN}`;
const META = { 'api-version': '2.0' };

function post(url, body, contentType = 'application/vnd.pypi.upload.v2+json') {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify({ meta: META, ...body }));
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { authorization: auth, 'content-type': contentType, 'content-length': bytes.length } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode >= 300) reject(new Error(`POST ${url}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : undefined);
        });
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

// <name>-<version>.tar.gz or <name>-<version>-<tags>.whl
const [, name, version] = /^(.+?)-([^-]+?)(?:\.tar\.gz|-.+\.whl)$/.exec(basename(paths[0]));
const session = await post(root, { name, version });
let next = 0;
async function worker() {
  while (next < paths.length) {
    const path = paths[next++];
    const bytes = await readFile(path);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = await post(session.links.upload, {
      filename: basename(path),
      size: bytes.length,
      hashes: { sha256 },
      mechanism: 'http-post-bytes',
    });
    await post(file.mechanism.file_url, bytes, 'application/octet-stream');
    await post(file.links.complete, {});
  }
}
await Promise.all(Array.from({ length: Math.min(PARALLEL, paths.length) }, worker));
await post(session.links.publish, {});
process.exit(0);
