/** The black-box checker against the reference index exactly as `pnpm start` runs it. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startReferenceIndex } from './test-support.js';

const CLI = new URL('../../../packages/conformance/dist/cli.js', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'pep694-ref-conformance-'));
const tokensFile = join(dataDir, 'tokens.json');
writeFileSync(
  tokensFile,
  JSON.stringify({
    tokens: [
      { token: 'conformance-token-0123456789', principal: 'ci', projects: ['*'] },
      { token: 'noperm-token-0123456789', principal: 'stranger', projects: ['nothing-here'] },
    ],
  }),
);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('pep694-conformance against the reference index', () => {
  it('passes every check', async () => {
    const { child, url } = await startReferenceIndex(dataDir, tokensFile);
    try {
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const cli = spawn(process.execPath, [
          CLI,
          '--root',
          url,
          '--token',
          'conformance-token-0123456789',
          '--token-noperm',
          'noperm-token-0123456789',
        ]);
        let text = '';
        cli.stdout.on('data', (d: Buffer) => (text += d.toString()));
        cli.stderr.on('data', (d: Buffer) => (text += d.toString()));
        cli.on('close', (code) => resolve({ code, text }));
      });
      expect(out.text).not.toMatch(/^FAIL/m);
      expect(out.text).toMatch(/^\d+ passed, 0 failed, 0 skipped$/m);
      expect(out.code).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});
