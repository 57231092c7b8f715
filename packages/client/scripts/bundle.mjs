// Bundles the `pep694` command into one CommonJS file, dist/cli/pep694-main.cjs, after `tsc -b`,
// and its bin, dist/cli/pep694.cjs, which runs it through a V8 code cache (src/cli/launcher.ts).
// Why one file: node resolves, reads and compiles each module of an ES module graph on its own,
// and for a command that runs for well under a second that start is a large share of its time
// (one file cut the client's CPU of a 21-file release from 0.64 to 0.53 s, median of 8,
// scripts/bench). Why CommonJS: an ES module bundle must load every node module it imports
// (https, zlib, …) before its first line runs, through the ES module loader's facades; as
// CommonJS, a module the command loads lazily (`await import(…)`: dist-metadata, cli-progress)
// requires them only when it runs. The first request of `pep694 upload` leaves 20–25 ms sooner
// (spawn to first request, median of 21 alternating runs: 192 → 167 ms).
// The library (`import ... from '@pep694/client'`) is not bundled; third-party client halves are
// still loaded from where they are installed (src/halves.ts, a dynamic import that stays one).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

/**
 * Node modules the command needs only on some paths, loaded when first used instead of at start:
 * `https` (with `tls`; only for an https:// index) and `child_process` (commander's executable
 * subcommands, which this command has none of, and --test-install's pip). Each is replaced in the
 * bundle by a module whose default export (a proxy) and named exports load the real one on first
 * use: `pep694 --version` 140.6 → 134.6 ms (medians of 30 alternating runs, twice).
 * Per module, the named exports the stand-in offers: an `import { other }` of a name not listed
 * fails the build; a `require()` (commander's) gets these names and `default`, so a dependency
 * that needs another name must be listed here. The --test-install tests spawn pip through the
 * stand-in; src/cli/bundle.test.ts checks what loads at start, and that https loads when used.
 */
const LAZY_BUILTINS = { https: [], child_process: ['spawn'] };

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${Object.keys(LAZY_BUILTINS).join('|')})$`);
    // The stand-in's own require of the real module stays a plain require.
    b.onResolve({ filter }, (args) =>
      args.namespace === 'lazy-builtin'
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, ({ path }) => ({
      loader: 'js',
      contents: [
        `let real;`,
        `const load = () => (real ??= require('node:${path}'));`,
        `export default new Proxy({}, { get: (_, key) => load()[key] });`,
        ...LAZY_BUILTINS[path].map((name) => `export const ${name} = (...args) => load().${name}(...args);`),
      ].join('\n'),
    }));
  },
};

const dist = fileURLToPath(new URL('../dist/cli/', import.meta.url));
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import.meta is empty in CommonJS: a module of the command that used it would break there.
  logOverride: { 'empty-import-meta': 'error' },
  logLevel: 'warning',
};
// The command.
await build({
  ...common,
  entryPoints: [`${dist}main.js`],
  outfile: `${dist}pep694-main.cjs`,
  sourcemap: 'linked',
  plugins: [lazyBuiltins],
});
// The bin: runs the command through its code cache (src/cli/launcher.ts).
await build({
  ...common,
  entryPoints: [`${dist}bin.js`],
  outfile: `${dist}pep694.cjs`,
  banner: { js: '#!/usr/bin/env node' },
});
