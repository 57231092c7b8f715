/**
 * PEP694_CONFIG's `plugin` forms: a package name resolved from the config file's directory, a
 * path relative to the config file, an absolute path and a `file://` URL. The config and plugins
 * live in a temp folder outside the repository, and the working directory is elsewhere, as for an
 * operator who installs a third-party plugin beside /etc/pep694/mechanisms.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdvisoryLocks } from '@pep694/store-postgres';
import { loadMechanisms, resumableOptions } from './mechanisms.js';

let tmp: string;
let configDir: string;

/** A module whose default export looks like a plugin; `name` says which file was loaded. */
const pluginModule = (name: string) => `export default { name: ${JSON.stringify(name)}, coreRange: '^0.1.0', register() {} };\n`;

function writeConfig(file: string, plugins: string[]): string {
  const path = join(configDir, file);
  writeFileSync(path, JSON.stringify({ mechanisms: plugins.map((plugin) => ({ plugin, options: {} })) }));
  return path;
}
const names = async (configPath: string) => (await loadMechanisms(configPath)).map((r) => r.plugin.name);

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pep694-config-'));
  configDir = join(tmp, 'etc');
  // An ESM-only package (only the `import` condition), installed beside the config.
  const pkg = join(configDir, 'node_modules', '@acme', 'mechanism-stream');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: '@acme/mechanism-stream', type: 'module', exports: { '.': { import: './dist/index.js' } } }),
  );
  mkdirSync(join(pkg, 'dist'));
  writeFileSync(join(pkg, 'dist', 'index.js'), pluginModule('by package name'));
  mkdirSync(join(tmp, 'plugins'));
  writeFileSync(join(tmp, 'plugins', 'relative.js'), pluginModule('by relative path'));
  writeFileSync(join(tmp, 'plugins', 'absolute.js'), pluginModule('by absolute path'));
  writeFileSync(join(tmp, 'plugins', 'url.js'), pluginModule('by file URL'));
  writeFileSync(join(configDir, 'beside.js'), pluginModule('beside the config'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('PEP694_CONFIG plugin forms', () => {
  it('a package name is resolved from the config file directory (ESM exports), not from the reference index', async () => {
    expect(await names(writeConfig('by-name.json', ['@acme/mechanism-stream']))).toEqual(['by package name']);
  });

  it('a relative path is resolved from the config file directory, not the working directory', async () => {
    expect(process.cwd()).not.toBe(configDir);
    expect(await names(writeConfig('relative.json', ['../plugins/relative.js', './beside.js']))).toEqual([
      'by relative path',
      'beside the config',
    ]);
  });

  it('an absolute path and a file:// URL are loaded as written', async () => {
    const config = writeConfig('absolute.json', [join(tmp, 'plugins', 'absolute.js'), pathToFileURL(join(tmp, 'plugins', 'url.js')).href]);
    expect(await names(config)).toEqual(['by absolute path', 'by file URL']);
  });

  it('the first-party mechanisms are found by name from a config anywhere', async () => {
    expect(await names(writeConfig('first-party.json', ['@pep694/mechanism-http-post-bytes']))).toEqual([
      '@pep694/mechanism-http-post-bytes',
    ]);
  });

  it('a package that is not installed stops the start, naming the config file and the folder searched', async () => {
    const config = writeConfig('missing.json', ['@acme/not-installed']);
    await expect(loadMechanisms(config)).rejects.toThrow(
      `${config}: cannot find the plugin package "@acme/not-installed" from ${configDir}`,
    );
  });
});

describe('the resumable mechanism across nodes', () => {
  it('alone (no PEP694_DATABASE_URL): its directory under the data directory, kept in memory, no lock', () => {
    expect(resumableOptions('/srv/data', {})).toEqual({ operator: 'pep694', directory: join('/srv/data', 'resumable') });
  });

  it('with PEP694_DATABASE_URL: shared mode on PEP694_RESUMABLE_DIR, appends kept apart by PostgreSQL advisory locks', () => {
    const options = resumableOptions('/srv/data', {
      PEP694_DATABASE_URL: 'postgres://u@127.0.0.1:1/db',
      PEP694_RESUMABLE_DIR: '/mnt/shared/resumable',
    });
    expect(options).toMatchObject({ operator: 'pep694', directory: '/mnt/shared/resumable', shared: true });
    expect(options.lock).toBeInstanceOf(PostgresAdvisoryLocks);
  });
});
