/**
 * A 1 GiB file through the whole flow against the host running as its own process, so its peak
 * RSS (VmHWM) is the server's alone: bytes must stream, never be buffered.
 */
import { createReadStream } from 'node:fs';
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { api, HOST_PROCESS_TOKEN, META, startHostProcess, writeRandomFile, type HostProcess } from '@pep694/server/testing';

const SIZE = 1024 ** 3;

describe('http-post-bytes with a 1 GiB file', () => {
  it('streams through the whole flow with the server peak RSS under 150 MB', async () => {
    const { path: file, sha256, remove } = await writeRandomFile('big.tar.gz', SIZE);
    let host: HostProcess | undefined;
    try {
      host = await startHostProcess({ plugin: new URL('../dist/index.js', import.meta.url) });
      const token = HOST_PROCESS_TOKEN;
      const session = await api('POST', host.url, { token, body: { meta: META, name: 'big', version: '1.0' } });
      expect(session.status).toBe(201);
      const fs = await api('POST', session.body.links.upload, {
        token,
        body: { meta: META, filename: 'big-1.0.tar.gz', size: SIZE, hashes: { sha256 }, mechanism: 'http-post-bytes' },
      });
      expect(fs.status).toBe(202);
      const status = await new Promise<number>((resolve, reject) => {
        const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': SIZE };
        const req = request(fs.body.mechanism.file_url, { method: 'POST', headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        pipeline(createReadStream(file), req).catch(reject);
      });
      expect(status).toBe(204);
      const done = await api('POST', fs.body.links.complete, { token, body: { meta: META } });
      // The bytes were hashed in the stream, so completion needs no re-read and answers at once.
      expect(done.status).toBe(201);
      expect(done.body.status).toBe('completed');
      expect((await api('POST', session.body.links.publish, { token, body: { meta: META } })).status).toBe(201);
      const hwm = host.peakRssMb();
      console.log(`1 GiB upload: server peak RSS ${hwm.toFixed(0)} MB`);
      expect(hwm).toBeLessThan(150);
    } finally {
      host?.close();
      remove();
    }
  }, 300_000);
});
