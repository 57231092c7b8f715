/**
 * Every TypeScript block of the READMEs newcomers copy from is a file in this folder, which the
 * typecheck (`tsc -p tsconfig.json`) compiles: a block here must equal the `readme:start` /
 * `readme:end` region of the file its `<!-- snippet: … -->` marker names, and a `ts` block without
 * a marker fails, so a snippet cannot drift from code that compiles.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../../', import.meta.url).pathname;
const READMES = ['packages/core/README.md', 'packages/server/README.md', 'examples/vendor-mechanism/README.md'];

interface Block {
  readonly line: number;
  readonly marker: string | undefined;
  readonly code: string;
}

/** The ```ts blocks of a markdown file, each with the snippet marker on the line before it. */
export function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    const marker = /^<!-- snippet: (\S+) -->$/.exec(lines[i - 1] ?? '')?.[1];
    blocks.push({ line: i + 1, marker, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

function region(file: string): string {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const start = text.indexOf('// readme:start\n');
  const end = text.indexOf('// readme:end\n');
  if (start < 0 || end < start) throw new Error(`${file} has no // readme:start … // readme:end region`);
  return text.slice(start + '// readme:start\n'.length, end).replace(/\n$/, '');
}

describe('README code blocks are compiled files', () => {
  for (const readme of READMES) {
    const blocks = tsBlocks(readFileSync(join(ROOT, readme), 'utf8'));
    it(`${readme}: has TypeScript blocks`, () => expect(blocks.length).toBeGreaterThan(0));
    for (const block of blocks) {
      it(`${readme}:${block.line} equals ${block.marker ?? '(no snippet marker)'}`, () => {
        expect(
          block.marker,
          `${readme}:${block.line}: add <!-- snippet: examples/snippets/src/<file>.ts --> before the block`,
        ).toBeDefined();
        expect(block.code).toBe(region(block.marker!));
      });
    }
  }

  it('finds a block that drifted', () => {
    const drifted = tsBlocks('<!-- snippet: examples/snippets/src/server-create.ts -->\n```ts\nconst x = 1;\n```\n')[0]!;
    expect(drifted.code).not.toBe(region(drifted.marker!));
  });
});
