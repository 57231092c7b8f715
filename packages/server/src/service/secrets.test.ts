import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ID_BYTES, newId, sameSecret } from './secrets.js';

describe('capability IDs and tokens (PEP 694 "Publishing Session Token": cryptographically unguessable)', () => {
  it('are 128 bits, base64url, and all distinct over 20 000 draws', () => {
    const ids = Array.from({ length: 20_000 }, newId);
    for (const id of ids.slice(0, 100)) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(ID_BYTES);
    }
    expect(ID_BYTES * 8).toBeGreaterThanOrEqual(128);
    expect(new Set(ids).size).toBe(ids.length);
  });
  it('every one of the 128 bits varies (no constant or zeroed byte)', () => {
    // 4000 draws: a fair bit is set 2000 ± 32 (1 sd) times; 1500..2500 is ±16 sd, so only a bit
    // that is stuck (or badly biased) fails, never chance.
    const n = 4000;
    const ones = new Array<number>(128).fill(0);
    for (let i = 0; i < n; i++) {
      const bytes = Buffer.from(newId(), 'base64url');
      for (let bit = 0; bit < 128; bit++) if (bytes[bit >> 3]! & (1 << (bit & 7))) ones[bit]! += 1;
    }
    for (const [bit, count] of ones.entries()) {
      expect(count, `bit ${bit}`).toBeGreaterThan(1500);
      expect(count, `bit ${bit}`).toBeLessThan(2500);
    }
  });
  it('come from the CSPRNG: the service makes session IDs, file IDs and stage tokens with newId only', () => {
    // A source check, since randomness cannot be told from a good PRNG by sampling.
    const read = (file: string) => readFileSync(new URL(file, import.meta.url), 'utf8');
    expect(read('./sessions.ts')).toMatch(/id: newId\(\),[\s\S]*stageToken: newId\(\)/);
    expect(read('./files.ts')).toMatch(/\{\s*id: newId\(\),\s*sessionId: session\.id,/);
    const sources = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    for (const file of sources) expect(read(`./${file}`), file).not.toMatch(/Math\.random|randomUUID|Date\.now\(\)\.toString/);
    const secrets = readFileSync(new URL('./secrets.ts', import.meta.url), 'utf8');
    expect(secrets).toMatch(/randomBytes\(ID_BYTES\)/);
  });
  it('sameSecret: equal only for the same string, whatever the lengths or characters', () => {
    const t = newId();
    expect(sameSecret(t, t)).toBe(true);
    expect(sameSecret(t, `${t}`.slice(0))).toBe(true);
    expect(sameSecret(t, `${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
    expect(sameSecret(t, t.slice(0, -1))).toBe(false); // a prefix
    expect(sameSecret(t, `${t}x`)).toBe(false); // longer
    expect(sameSecret(t, '')).toBe(false);
    expect(sameSecret(t, 'x'.repeat(10_000))).toBe(false);
    expect(sameSecret('ｆoo', 'ｆoo')).toBe(true);
    expect(sameSecret('ｆoo', 'foo')).toBe(false);
  });
  it('sameSecret compares fixed-size digests with crypto.timingSafeEqual (no early exit on length or prefix)', () => {
    const source = readFileSync(new URL('./secrets.ts', import.meta.url), 'utf8');
    const body = /export function sameSecret[\s\S]*?\n\}/.exec(source)?.[0] ?? '';
    expect(body).toMatch(/createHash\('sha256'\)\.update\(stored\)/);
    expect(body).toMatch(/return timingSafeEqual\(a, b\);/);
    expect(body).not.toMatch(/length|===|!==/);
  });
});
