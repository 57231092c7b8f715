/**
 * A 1 GiB file through the whole flow, sent by the client half as one multipart form, against the
 * host running as its own process so that its peak RSS (VmHWM) is the server's alone: the file
 * part must stream through busboy to the staging write, never be buffered.
 */
import { describe, expect, it } from 'vitest';
import { api, HOST_PROCESS_TOKEN, META, startHostProcess, writeRandomFile, type HostProcess } from '@pep694/server/testing';
import { uploadMultipart } from './client.js';

const SIZE = 1024 ** 3;

describe('vnd-<operator>-multipart with a 1 GiB file', () => {
  it('streams the file part through the whole flow with the server peak RSS under 150 MB', async () => {
    const { path: file, sha256, remove } = await writeRandomFile('big-1.0.tar.gz', SIZE);
    let host: HostProcess | undefined;
    try {
      host = await startHostProcess({ plugin: new URL('../dist/index.js', import.meta.url), options: { operator: 'big' } });
      const token = HOST_PROCESS_TOKEN;
      const session = await api('POST', host.url, { token, body: { meta: META, name: 'big', version: '1.0' } });
      expect(session.status).toBe(201);
      const fs = await api('POST', session.body.links.upload, {
        token,
        body: { meta: META, filename: 'big-1.0.tar.gz', size: SIZE, hashes: { sha256 }, mechanism: 'vnd-big-multipart' },
      });
      expect(fs.status, JSON.stringify(fs.body)).toBe(202);
      let last = 0;
      await uploadMultipart({
        instructions: fs.body.mechanism,
        body: file,
        authorization: host.authorization,
        onProgress: (sent) => (last = sent),
      });
      expect(last).toBe(SIZE);
      const done = await api('POST', fs.body.links.complete, { token, body: { meta: META } });
      // The bytes were hashed in the stream, so completion needs no re-read and answers at once.
      expect(done.status, JSON.stringify(done.body)).toBe(201);
      expect((await api('POST', session.body.links.publish, { token, body: { meta: META } })).status).toBe(201);
      const hwm = host.peakRssMb();
      console.log(`multipart 1 GiB upload: server peak RSS ${hwm.toFixed(0)} MB`);
      expect(hwm).toBeLessThan(150);
    } finally {
      host?.close();
      remove();
    }
  }, 300_000);
});
