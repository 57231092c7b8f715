/**
 * The layout issue #14 asked for, kept true by a test: the service is the session protocol
 * without HTTP, and the walk map (in `http/routes.ts` and the README) points at code that exists.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const sources = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

describe('service/ layout', () => {
  it('imports nothing of HTTP: not http/, express or node:http', () => {
    expect(sources.length).toBeGreaterThan(5);
    for (const file of sources) {
      const imports = [...read(`./${file}`).matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect(
        imports.filter((i) => i?.startsWith('../http/') || i === 'express' || i === 'node:http'),
        file,
      ).toEqual([]);
    }
  });

  for (const [where, text] of [
    ['http/routes.ts', read('../http/routes.ts')],
    ['README.md', read('../../README.md')],
  ] as const) {
    it(`the walk map in ${where} has the seven steps, and names functions that exist`, () => {
      const steps = where === 'README.md' ? text.match(/^\| [1-7]\. /gm) : text.match(/^ \* {3}[1-7]\. /gm);
      expect(steps, 'steps 1 to 7').toHaveLength(7);
      const named = [...text.matchAll(/service\/([a-z-]+\.ts)(?:` `| {2,})([A-Za-z]+)/g)].map((m) => [m[1]!, m[2]!] as const);
      expect(named.length, 'service functions named').toBeGreaterThanOrEqual(5);
      for (const [file, fn] of named) expect(read(`./${file}`), `${file} ${fn}`).toMatch(new RegExp(`function ${fn}\\(`));
    });
  }
});
