/**
 * The toolkit as a third party gets it today (issue #22 item 3): the publishable packages packed
 * (`scripts/pack.mjs`, what `pnpm tarballs` runs), installed from those tarballs into an empty
 * folder outside the repository, the tutorial's `vnd-acme-put-v1` mechanism
 * (examples/snippets/src/put-*.ts, the code examples/vendor-mechanism/README.md shows) compiled
 * there against the installed types, its conformance test run there by that folder's own vitest,
 * and the installed reference index loading it by package name through PEP694_CONFIG and
 * publishing a real wheel sent through it.
 *
 * Installed with pnpm from the machine's pnpm store (hard links, metadata from the cache:
 * `--prefer-offline`), a few seconds where a cold `npm install` took 1.5 minutes. better-sqlite3,
 * a native addon the workspace has already compiled, is linked from the workspace instead of
 * being compiled again: this test is about our tarballs, not about building SQLite (GitHub, where
 * its prebuilt binaries are, is not reachable from CI).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestProblems, packAll, pnpmCommand, type PackedPackage } from '../../../scripts/pack.mjs';

const ROOT = realpathSync(new URL('../../../', import.meta.url).pathname);
const WHEEL = new URL('../../../../shared/fixtures/dist/demo_pkg-1.0.0-py3-none-any.whl', import.meta.url).pathname;
const META = { 'api-version': '2.0' };
const JSON_TYPE = 'application/vnd.pypi.upload.v2+json';

/** The version of a package the workspace installed (from `dir`'s node_modules), pinned exactly so the store has it. */
function installed(name: string, dir = ROOT): string {
  return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The environment of a child that must not think it runs inside this vitest, this workspace or this pnpm. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('VITEST') && !k.startsWith('PEP694_') && !k.startsWith('npm_') && k !== 'TEST' && k !== 'NODE_ENV',
    ),
  );
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeout = 240_000): string {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

let tmp: string;
let app: string;
let packed: PackedPackage[];
let index: ChildProcess | undefined;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pep694-packed-'));
  app = join(tmp, 'acme-index');
});
afterAll(() => {
  index?.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

describe('the packed tarballs, installed outside the repository', () => {
  it('packs every publishable package, and no private one, with manifests that install as-is', () => {
    packed = packAll({ into: join(tmp, 'packs') });
    const names = packed.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['@pep694/core', '@pep694/server', '@pep694/reference-index', '@pep694/mechanism-tus']));
    expect(names).not.toContain('@pep694/snippets'); // private
    for (const p of packed) expect(readFileSync(p.tarball).length).toBeGreaterThan(0);
  }, 60_000);

  it('a manifest that keeps a workspace range, or has no files list, is refused by the pack check', () => {
    const good = { name: 'x', files: ['dist'], exports: { '.': './dist/index.js' }, dependencies: { '@pep694/core': '^0.1.0' } };
    expect(manifestProblems(good, ['dist/index.js', 'package.json'])).toEqual([]);
    expect(manifestProblems({ ...good, dependencies: { '@pep694/core': 'workspace:^' } }, ['dist/index.js'])).toEqual([
      'dependencies.@pep694/core is "workspace:^", which only this workspace can resolve',
    ]);
    expect(manifestProblems({ ...good, files: undefined }, ['dist/index.js'])).toEqual([
      'no "files" list: everything in the folder would be packed',
    ]);
    expect(manifestProblems(good, ['src/index.ts'])[0]).toMatch(/dist\/index\.js .* is not in the tarball/);
  });

  it('installs the tarballs into an empty folder, with the tutorial mechanism beside them', () => {
    const tarball = (name: string) => `file:${packed.find((p) => p.name === name)!.tarball}`;
    const mechanism = join(app, 'mechanism-put');
    mkdirSync(join(mechanism, 'src'), { recursive: true });
    // The tutorial's mechanism exactly as the README shows it (the snippets test holds them equal).
    const snippets = join(ROOT, 'examples', 'snippets', 'src');
    cpSync(join(snippets, 'put-mechanism.ts'), join(mechanism, 'src', 'put-mechanism.ts'));
    cpSync(join(snippets, 'put-plugin.ts'), join(mechanism, 'src', 'put-plugin.ts'));
    cpSync(join(snippets, 'put-mechanism.test.ts'), join(mechanism, 'src', 'conformance.test.ts'));
    writeJson(join(mechanism, 'package.json'), {
      name: '@acme/mechanism-put',
      version: '0.1.0',
      type: 'module',
      exports: { '.': { types: './dist/put-plugin.d.ts', import: './dist/put-plugin.js' } },
      peerDependencies: { '@pep694/core': '^0.1.0', express: '^5.0.0', tsyringe: '^4.10.0' },
    });
    writeJson(join(mechanism, 'tsconfig.json'), {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        declaration: true,
        types: ['node'],
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
      exclude: ['src/**/*.test.ts'],
    });
    writeFileSync(
      join(app, 'vitest.config.ts'),
      `import { defineConfig } from 'vitest/config';\nexport default defineConfig({ test: { include: ['mechanism-put/src/**/*.test.ts'], setupFiles: ['reflect-metadata'] } });\n`,
    );
    const snippetsDir = join(ROOT, 'examples', 'snippets');
    writeJson(join(app, 'package.json'), {
      name: 'acme-index',
      private: true,
      type: 'module',
      dependencies: {
        '@pep694/core': tarball('@pep694/core'),
        '@pep694/reference-index': tarball('@pep694/reference-index'),
        '@acme/mechanism-put': 'link:./mechanism-put',
        express: installed('express', snippetsDir),
        tsyringe: installed('tsyringe', snippetsDir),
        'reflect-metadata': installed('reflect-metadata'),
        zod: installed('zod', snippetsDir),
      },
      devDependencies: {
        '@pep694/server': tarball('@pep694/server'),
        vitest: installed('vitest'),
        typescript: installed('typescript'),
        '@types/node': installed('@types/node'),
        '@types/express': installed('@types/express', snippetsDir),
      },
      pnpm: {
        // The packed manifests name each other by version range (^0.1.0), which the registry does
        // not have: point every one of our names at its tarball.
        overrides: {
          ...Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`])),
          'better-sqlite3': `link:${realpathSync(join(ROOT, 'packages', 'server', 'node_modules', 'better-sqlite3'))}`,
        },
        onlyBuiltDependencies: ['esbuild'],
      },
    });
    const storeDir = /storeDir: "?([^"\n]+)"?/.exec(readFileSync(join(ROOT, 'node_modules', '.modules.yaml'), 'utf8'))?.[1];
    const [cmd, ...pre] = pnpmCommand(ROOT);
    run(cmd!, [...pre, 'install', '--prefer-offline', '--reporter=append-only', ...(storeDir ? ['--store-dir', storeDir] : [])], app);
    const installedCore = JSON.parse(readFileSync(join(app, 'node_modules', '@pep694', 'core', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(installedCore.version).toBe(packed.find((p) => p.name === '@pep694/core')!.version);
    // Really outside the workspace: core is the installed tarball's copy, not a link into the repository.
    expect(realpathSync(join(app, 'node_modules', '@pep694', 'core')).startsWith(ROOT)).toBe(false);
  }, 300_000);

  it('compiles the mechanism there against the installed packages', () => {
    run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', 'mechanism-put'], app);
    expect(readFileSync(join(app, 'mechanism-put', 'dist', 'put-plugin.js'), 'utf8')).toContain('@acme/mechanism-put');
  }, 120_000);

  it("passes the mechanism conformance suite there, run by that folder's own vitest", () => {
    const report = join(tmp, 'conformance.json');
    const r = spawnSync(join(app, 'node_modules', '.bin', 'vitest'), ['run', '--reporter=json', `--outputFile=${report}`], {
      cwd: app,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 240_000,
    });
    let results: { numPassedTests: number; numFailedTests: number; testResults: { message?: string }[] };
    try {
      results = JSON.parse(readFileSync(report, 'utf8')) as typeof results;
    } catch {
      throw new Error(`the conformance run wrote no report (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    const failures = JSON.stringify(results.testResults.map((t) => t.message ?? '').filter(Boolean));
    expect(results.numFailedTests, failures).toBe(0);
    expect(results.numPassedTests, failures).toBeGreaterThan(10);
    expect(r.status).toBe(0);
  }, 240_000);

  it('the installed reference index loads it by package name through PEP694_CONFIG and publishes a wheel sent through it', async () => {
    const config = join(app, 'pep694.json');
    writeJson(config, {
      mechanisms: [{ plugin: '@pep694/mechanism-http-post-bytes' }, { plugin: '@acme/mechanism-put', options: { operator: 'acme' } }],
    });
    const { url, token, banner } = await startIndex(config);
    expect(banner).toMatch(/mechanisms:\s+http-post-bytes, vnd-acme-put-v1/);
    expect(await (await fetch(new URL('/readyz', url))).json()).toMatchObject({ status: 'ready' });

    const wheel = readFileSync(WHEEL);
    const { createHash } = await import('node:crypto');
    const sha256 = createHash('sha256').update(wheel).digest('hex');
    const auth = { Authorization: `Bearer ${token}` };
    const call = async (method: string, to: string, body: unknown) => {
      const res = await fetch(to, {
        method,
        headers: { ...auth, Accept: JSON_TYPE, 'Content-Type': JSON_TYPE },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const session = await call('POST', url, { meta: META, name: 'demo-pkg', version: '1.0.0' });
    expect(session.status, JSON.stringify(session.body)).toBe(201);
    const file = await call('POST', session.body.links.upload, {
      meta: META,
      filename: 'demo_pkg-1.0.0-py3-none-any.whl',
      size: wheel.length,
      hashes: { sha256 },
      mechanism: 'vnd-acme-put-v1',
    });
    expect(file.status, JSON.stringify(file.body)).toBe(202);
    expect(file.body.mechanism.identifier).toBe('vnd-acme-put-v1');
    const put = await fetch(file.body.mechanism.file_url, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/octet-stream' },
      body: wheel,
    });
    expect(put.status, await put.text()).toBe(204);
    const complete = await call('POST', file.body.links.complete, { meta: META });
    expect(complete.status, JSON.stringify(complete.body)).toBe(201);
    const publish = await call('POST', session.body.links.publish, { meta: META });
    expect(publish.status, JSON.stringify(publish.body)).toBe(201);

    // Published: the simple index lists it, and the bytes served are the bytes sent.
    const simple = new URL('/simple/demo-pkg/', url).href;
    const page = await fetch(simple, { headers: { Accept: 'application/vnd.pypi.simple.v1+json' } });
    const listing = (await page.json()) as { files: { filename: string; url: string; hashes: Record<string, string> }[] };
    const listed = listing.files.find((f) => f.filename === 'demo_pkg-1.0.0-py3-none-any.whl');
    expect(listed?.hashes.sha256).toBe(sha256);
    const download = Buffer.from(await (await fetch(new URL(listed!.url, simple))).arrayBuffer());
    expect(download.equals(wheel)).toBe(true);
  }, 60_000);
});

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Starts the installed reference index through its `bin`, from the folder it was installed in. */
async function startIndex(config: string): Promise<{ url: string; token: string; banner: string }> {
  const child = spawn(join(app, 'node_modules', '.bin', 'pep694-reference-index'), [], {
    cwd: app,
    env: cleanEnv({ PEP694_PORT: '0', PEP694_DATA: join(tmp, 'data'), PEP694_CONFIG: config, PEP694_LOG_LEVEL: 'warn' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  index = child;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /Upload 2\.0 root:\s+(\S+)/.exec(out)?.[1];
      const token = /dev token:\s+(\S+)\s+\(shown once/.exec(out)?.[1];
      if (url && token) resolve({ url, token, banner: out });
    });
    child.once('exit', (code) => reject(new Error(`the installed reference index exited with ${code}:\n${out}\n${err}`)));
  });
}
