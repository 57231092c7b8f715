/** The development token `TokensFileAuth.fromEnvironment` creates when no tokens file is named. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokensFileAuth } from './tokens-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the development token', () => {
  it('is created once, kept in <data>/dev-token, and never starts with "-" (twine -p would read it as an option)', () => {
    for (let i = 0; i < 64; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'pep694-devtoken-'));
      dirs.push(dir);
      const first = TokensFileAuth.fromEnvironment(dir, {});
      expect(first.devToken?.created).toBe(true);
      expect(first.devToken?.token).toMatch(/^pep694-dev-[A-Za-z0-9_-]{32}$/);
      expect(readFileSync(join(dir, 'dev-token'), 'utf8').trim()).toBe(first.devToken?.token);
      const again = TokensFileAuth.fromEnvironment(dir, {});
      expect(again.devToken).toMatchObject({ token: first.devToken?.token, created: false });
    }
  });
});
