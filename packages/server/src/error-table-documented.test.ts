// The server README's error table lists every code of core's problem catalogue with its status.
// (Not named readme.test.ts: pnpm pack ships every readme* file, whatever the files list says.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROBLEM_CODES } from '@pep694/core';

describe('server README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  it('documents every error code with its status', () => {
    for (const [code, { status }] of Object.entries(PROBLEM_CODES)) {
      expect(readme, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });
});
