/**
 * The node flags of the reference index (node-flags.ts): every way we start it uses them, and its
 * banner says whether the running process has them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingNodeFlags, NODE_FLAGS } from './node-flags.js';
import { startReferenceIndex } from './test-support.js';

const startScript = (packageJson: URL) => (JSON.parse(readFileSync(packageJson, 'utf8')) as { scripts: { start: string } }).scripts.start;

describe('NODE_FLAGS', () => {
  it('are the flags of both `start` scripts (the repository root and the package)', () => {
    for (const pkg of [new URL('../../../package.json', import.meta.url), new URL('../package.json', import.meta.url)]) {
      expect(startScript(pkg)).toContain(`node ${NODE_FLAGS.join(' ')} `);
    }
  });

  it('missingNodeFlags names the ones a command line lacks', () => {
    expect(missingNodeFlags([...NODE_FLAGS, '--enable-source-maps'])).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=8'])).toEqual(['--initial-old-space-size=128']);
    expect(missingNodeFlags(['--initial-old-space-size=64'])).toEqual([...NODE_FLAGS]);
  });

  describe('the banner', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pep694-ref-flags-'));
    const tokensFile = join(dataDir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: 'flags-upload-token-0123456789', principal: 'ci', projects: ['*'] }] }));
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it.each([
      ['with the flags', NODE_FLAGS, `node flags:       ${NODE_FLAGS.join(' ')}\n`],
      ['without them', [], `node flags:       without ${NODE_FLAGS.join(' ')}: V8 may spend more CPU collecting than serving`],
    ])(
      '%s',
      async (_, flags, line) => {
        const { child, banner } = await startReferenceIndex(dataDir, tokensFile, {}, flags);
        child.kill('SIGTERM');
        expect(banner).toContain(line);
      },
      60_000,
    );
  });
});
