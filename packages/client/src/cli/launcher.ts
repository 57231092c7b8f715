/**
 * What the `pep694` command's bin (bin.ts, bundled into dist/cli/pep694.cjs) does: it runs the
 * command itself (the bundle dist/cli/pep694-main.cjs) through a V8 code cache kept in the cache
 * directory, `<cache dir>/code-cache/`.
 *
 * Why: a run of the command is short, and compiling its bundle is a part of it that can be kept.
 * Without a cache, V8 reads and parses the whole bundle (about 9 ms on the bench machine) and then
 * compiles each function the first time it runs; with it, V8 takes the bytecode of every function
 * the first run compiled (the cache is written when that run exits). On the bench machine:
 * compiling the bundle 9 → 2 ms, `pep694 --version` 96 → 90 ms (medians of 40 alternating runs),
 * a 21-file release 0.388 → 0.372 s (medians of 16). Node 22's `module.enableCompileCache()` does
 * this for every module; the command supports Node 20.
 *
 * The cache is only ever an optimisation: a missing, unreadable, stale or corrupt cache file (V8
 * checks its own version, flags and the source's length, and the file name holds the bundle's size
 * and mtime and node's version) is compiled from source, and a directory that cannot be written to
 * is left alone.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { constants, Script } from 'node:vm';
import { defaultCacheDir } from '../cache-dir.js';

/** The cache directory the command will use: `--cache-dir DIR` (or `=DIR`) on its command line, else the default. */
export function cacheDirOf(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--cache-dir' && argv[i + 1] !== undefined) return argv[i + 1]!;
    if (a.startsWith('--cache-dir=')) return a.slice('--cache-dir='.length);
  }
  return defaultCacheDir(env);
}

const PREFIX = 'pep694-main-';

/** Runs the CommonJS file `main` as node would, with its compiled code kept in `cacheDir/code-cache`. */
export function runWithCodeCache(main: string, cacheDir: string): void {
  const source = readFileSync(main, 'utf8');
  let cachePath: string | undefined;
  let cachedData: Buffer | undefined;
  try {
    const st = statSync(main);
    cachePath = join(cacheDir, 'code-cache', `${PREFIX}${st.size}-${Math.trunc(st.mtimeMs)}-${process.version}-${process.arch}.bin`);
    cachedData = readFileSync(cachePath);
  } catch {
    // No cache yet (or no way to tell which one fits): compile from source.
  }
  // The wrapper node's CommonJS loader puts around a module, on the first line: line numbers stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
    filename: main,
    ...(cachedData ? { cachedData } : {}),
    // import() inside the bundle (a third party's client half) resolves as it would in a module node loaded.
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachePath && (cachedData === undefined || script.cachedDataRejected)) {
    const path = cachePath;
    // At exit, so that the cache holds every function this run compiled, not only the top level.
    process.once('exit', () => saveCache(path, () => script.createCachedData()));
  }
  quietDefaultLoaderWarning();
  const module = { exports: {}, filename: main, id: main, loaded: false };
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  fn.call(module.exports, module.exports, createRequire(main), module, main, dirname(main));
}

/** Writes the cache whole (a temporary file renamed into place) and removes those of other bundles or node versions. */
function saveCache(path: string, data: () => Buffer): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, data());
    renameSync(tmp, path);
    for (const name of readdirSync(dir)) {
      if (name.startsWith(PREFIX) && join(dir, name) !== path && !name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
    }
  } catch {
    // A cache directory that cannot be written to: the next run compiles from source again.
  }
}

/**
 * Node 20 calls `vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER` experimental and warns on stderr at
 * the first `import()` through it (the command's one: a third party's client half). That import
 * does what it would in a module node loaded itself, so that one warning is not shown; every other
 * warning is.
 */
function quietDefaultLoaderWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = (warning: unknown, ...rest: unknown[]) => {
    if (typeof warning === 'string' && warning.startsWith('vm.USE_MAIN_CONTEXT_DEFAULT_LOADER ')) return;
    emitWarning(warning, ...rest);
  };
}
