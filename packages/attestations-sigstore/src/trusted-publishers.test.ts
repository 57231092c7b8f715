/**
 * Trusted publishers: the configuration (GitHub and GitLab kinds, several per project, names
 * normalized) and its file, re-read when it changes and failing closed when it breaks.
 */
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { matches, StaticTrustedPublishers, TrustedPublishersFileSchema } from './trusted-publishers.js';
import { TrustedPublishersFile } from './trusted-publishers-file.js';

const publisher = { kind: 'GitHub' as const, repository: 'octo/demo', workflow: 'release.yml' };
let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

const claims = (repo: string, config: string) => ({
  subjectAlternativeName: config,
  claims: {
    issuer: 'https://token.actions.githubusercontent.com',
    sourceRepositoryURI: `https://github.com/${repo}`,
    buildConfigURI: config,
  },
});

describe('trusted publishers', () => {
  it('look projects up by normalized name and hold several publishers each', () => {
    const source = new StaticTrustedPublishers({
      projects: { 'Demo.Pkg': [publisher], demo_pkg: [{ kind: 'GitLab', repository: 'g/sub/p', workflow_filepath: 'ci/release.yml' }] },
    });
    expect(source.publishersOf('demo-pkg').map((p) => p.kind)).toEqual(['GitHub', 'GitLab']);
    expect(source.publishersOf('other')).toEqual([]);
  });

  it('refuse configurations that could match more than meant', () => {
    for (const bad of [
      { kind: 'GitHub', repository: 'octo', workflow: 'release.yml' },
      { kind: 'GitHub', repository: 'octo/demo', workflow: '.github/workflows/release.yml' },
      { kind: 'GitHub', repository: 'octo/demo', workflow: '' },
      { kind: 'GitHub', repository: 'octo/demo', workflow: 'release.yml', extra: 1 },
      { kind: 'Jenkins', repository: 'octo/demo' },
    ]) {
      expect(TrustedPublishersFileSchema.safeParse({ projects: { x: [bad] } }).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('match the workflow file exactly, not a prefix of it', () => {
    const [p] = new StaticTrustedPublishers({ projects: { x: [publisher] } }).publishersOf('x');
    expect(matches(p!, claims('octo/demo', 'https://github.com/octo/demo/.github/workflows/release.yml@refs/tags/v1'))).toBe(true);
    expect(matches(p!, claims('Octo/Demo', 'https://github.com/Octo/Demo/.github/workflows/release.yml@refs/tags/v1'))).toBe(true);
    expect(matches(p!, claims('octo/demo', 'https://github.com/octo/demo/.github/workflows/release.yml.bak@refs/tags/v1'))).toBe(false);
    expect(matches(p!, claims('octo/demo', 'https://github.com/octo/demo/.github/workflows/release.ymlx@refs/tags/v1'))).toBe(false);
    expect(matches(p!, claims('octo/demo2', 'https://github.com/octo/demo2/.github/workflows/release.yml@refs/tags/v1'))).toBe(false);
  });

  it('the file is re-read on change, and fails closed when it is broken or gone', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'publishers-'));
    dir = tmp;
    const path = join(tmp, 'trusted-publishers.json');
    const write = (text: string) => {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    };
    write(JSON.stringify({ projects: { demo: [publisher] } }));
    const file = new TrustedPublishersFile(path);
    expect(file.publishersOf('demo')).toHaveLength(1);
    write(JSON.stringify({ projects: { demo: [publisher, { ...publisher, workflow: 'other.yml' }] } }));
    expect(file.publishersOf('demo')).toHaveLength(2);
    write('{ not json');
    expect(file.publishersOf('demo')).toEqual([]);
    expect(file.lastError).toMatch(/invalid/);
    write(JSON.stringify({ projects: { demo: [publisher] } }));
    expect(file.publishersOf('demo')).toHaveLength(1);
    unlinkSync(path);
    expect(file.publishersOf('demo')).toEqual([]);
    expect(() => new TrustedPublishersFile(join(tmp, 'missing.json'))).toThrow(/cannot read/);
  });
});
