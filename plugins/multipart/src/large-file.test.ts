/**
 * A 1 GiB file through the whole flow, sent by the client half as one multipart form, against the
 * host running as its own process so that its peak RSS (VmHWM) is the server's alone: the file
 * part must stream through busboy to the staging write, never be buffered.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { uploadMultipart } from './client.js';

const SIZE = 1024 ** 3;
const TOKEN = 'large-file-token-0123456789';
const work = mkdtempSync(join(tmpdir(), 'pep694-multipart-1gib-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const require = createRequire(import.meta.url);
const url = (specifier: string) => JSON.stringify(pathToFileURL(require.resolve(specifier)).href);
const serverScript = `
import ${url('reflect-metadata')};
import { createServer, TokensFileAuth } from ${JSON.stringify(new URL('../node_modules/@pep694/server/dist/index.js', import.meta.url).href)};
import plugin from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
const auth = new TokensFileAuth({ tokens: [{ token: ${JSON.stringify(TOKEN)}, principal: 't', projects: ['*'] }] });
const server = await createServer({ config: { dataDir: process.argv[2], reaperInterval: 0 }, auth: { authenticator: auth, authorizer: auth, names: auth }, mechanisms: [{ plugin, options: { operator: 'big' } }] });
const { url } = await server.listen(0, '127.0.0.1');
console.log('ROOT ' + url);
`;

async function json(method: string, target: string, body: unknown) {
  const res = await fetch(target, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.pypi.upload.v2+json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

describe('vnd-<operator>-multipart with a 1 GiB file', () => {
  it('streams the file part through the whole flow with the server peak RSS under 150 MB', async () => {
    const file = join(work, 'big-1.0.tar.gz');
    const hash = createHash('sha256');
    const block = Buffer.alloc(4 * 1024 ** 2);
    const out = createWriteStream(file);
    for (let done = 0; done < SIZE; done += block.length) {
      randomFillSync(block);
      hash.update(block);
      if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise((r) => out.end(r));
    const sha256 = hash.digest('hex');

    const script = join(work, 'server.mjs');
    writeFileSync(script, serverScript);
    const child = spawn(process.execPath, [script, join(work, 'data')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PEP694_LOG_LEVEL: 'warn' } });
    try {
      const root = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /ROOT (\S+)/.exec(text);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const meta = { 'api-version': '2.0' };
      const session = await json('POST', root, { meta, name: 'big', version: '1.0' });
      expect(session.status).toBe(201);
      const fs = await json('POST', session.body.links.upload, { meta, filename: 'big-1.0.tar.gz', size: SIZE, hashes: { sha256 }, mechanism: 'vnd-big-multipart' });
      expect(fs.status, JSON.stringify(fs.body)).toBe(202);
      let last = 0;
      await uploadMultipart({ instructions: fs.body.mechanism, body: file, authorization: `Bearer ${TOKEN}`, onProgress: (sent) => (last = sent) });
      expect(last).toBe(SIZE);
      const done = await json('POST', fs.body.links.complete, { meta });
      // The bytes were hashed in the stream, so completion needs no re-read and answers at once.
      expect(done.status, JSON.stringify(done.body)).toBe(201);
      expect((await json('POST', session.body.links.publish, { meta })).status).toBe(201);
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
      console.log(`multipart 1 GiB upload: server peak RSS ${hwm.toFixed(0)} MB`);
      expect(hwm).toBeLessThan(150);
    } finally {
      child.kill('SIGKILL');
    }
  }, 300_000);
});
