/**
 * A 1 GiB file through the whole flow against the host running as its own process, so its peak
 * RSS (VmHWM) is the server's alone: bytes must stream, never be buffered.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';

const SIZE = 1024 ** 3;
const TOKEN = 'large-file-token-0123456789';
const work = mkdtempSync(join(tmpdir(), 'pep694-1gib-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const serverScript = `
import 'reflect-metadata';
import { pino } from 'pino';
import { createServer, TokensFileAuth } from ${JSON.stringify(new URL('../../../packages/server/dist/index.js', import.meta.url).href)};
import plugin from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
const auth = new TokensFileAuth({ tokens: [{ token: ${JSON.stringify(TOKEN)}, principal: 't', projects: ['*'] }] });
const server = await createServer({ config: { dataDir: process.argv[2], reaperInterval: 0 }, auth: { authenticator: auth, authorizer: auth, names: auth }, mechanisms: [{ plugin }], logger: pino({ level: 'warn' }) });
const { url } = await server.listen(0, '127.0.0.1');
console.log('ROOT ' + url);
`;

async function json(method: string, url: string, body: unknown) {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.pypi.upload.v2+json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

describe('http-post-bytes with a 1 GiB file', () => {
  it('streams through the whole flow with the server peak RSS under 150 MB', async () => {
    // The data file: random 4 MiB blocks, hashed as they are written.
    const file = join(work, 'big.tar.gz');
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

    // The child resolves bare imports (pino, reflect-metadata) from the server package.
    const script = new URL('../../../packages/server/.large-file-server.mjs', import.meta.url).pathname;
    writeFileSync(script, serverScript);
    const child = spawn(process.execPath, [script, join(work, 'data')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const root = await new Promise<string>((resolve, reject) => {
        let outText = '';
        child.stdout!.on('data', (d: Buffer) => {
          outText += d.toString();
          const m = /ROOT (\S+)/.exec(outText);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const meta = { 'api-version': '2.0' };
      const session = await json('POST', root, { meta, name: 'big', version: '1.0' });
      expect(session.status).toBe(201);
      const fs = await json('POST', session.body.links.upload, { meta, filename: 'big-1.0.tar.gz', size: SIZE, hashes: { sha256 }, mechanism: 'http-post-bytes' });
      expect(fs.status).toBe(202);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(fs.body.mechanism.file_url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-length': SIZE } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        pipeline(createReadStream(file), req).catch(reject);
      });
      expect(status).toBe(204);
      const done = await json('POST', fs.body.links.complete, { meta });
      // The bytes were hashed in the stream, so completion needs no re-read and answers at once.
      expect(done.status).toBe(201);
      expect(done.body.status).toBe('completed');
      expect((await json('POST', session.body.links.publish, { meta })).status).toBe(201);
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
      console.log(`1 GiB upload: server peak RSS ${hwm.toFixed(0)} MB`);
      expect(hwm).toBeLessThan(150);
    } finally {
      child.kill('SIGKILL');
      rmSync(script, { force: true });
    }
  }, 300_000);
});
