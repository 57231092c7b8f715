/**
 * Hostile archives end to end (issue #21; PEP 694 "Complete a File Upload Session": the server
 * may refuse a file that fails validation). Every hostile wheel and sdist of @pep694/dist-validator's
 * test support (concatenated or padded zips, local headers that lie, duplicate or escaping member
 * paths, links out, device files, concatenated tars, gzip bombs) is uploaded over real HTTP: the
 * completion answers 422 `invalid-artifact` with a detail naming the check that failed, the file
 * is in `error`, and nothing reaches the stage. The cases themselves, and their effect on Python's
 * zipfile and tarfile, are tested in packages/dist-validator/src/hostile-archives.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDistributionValidator } from '@pep694/dist-validator';
import { HOSTILE_SDISTS, HOSTILE_WHEELS } from '../../../dist-validator/src/test-support.js';
import { ProjectDetailSchema } from '../../../simple-index/src/test-support.js';
import { tally, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, postBytes, startServer } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ config: { index: {} }, validators: [createDistributionValidator()] });
});
afterAll(async () => t.close());

describe('hostile archives are refused at completion with 422 invalid-artifact naming the check', () => {
  for (const c of [...HOSTILE_WHEELS, ...HOSTILE_SDISTS]) {
    it(`${c.filename.endsWith('.whl') ? 'wheel' : 'sdist'}: ${c.name}`, async () => {
      const s = await createSession(t.url);
      try {
        const bytes = await c.build();
        const f = await createFile(s, c.filename, bytes);
        expect(await postBytes(f, bytes)).toBeLessThan(300);
        const done = await api('POST', f.links.complete!, { body: { meta: META } });
        expect(done.status, JSON.stringify(done.body)).toBe(422);
        expect(done.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(done.body.code).toBe('invalid-artifact');
        expect(done.body.detail).toContain(c.message);
        expect(done.body.errors).toHaveLength(1);
        expect((await api('GET', f.links['file-upload-session']!)).body.status).toBe('error');
        const stage = await fetch(`${s.links.stage}demo-pkg/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
        expect(ProjectDetailSchema.parse(await stage.json()).files).toEqual([]);
        tally('hostile cases');
      } finally {
        expect((await api('DELETE', s.links.session!)).status).toBe(204);
      }
    });
  }
});
