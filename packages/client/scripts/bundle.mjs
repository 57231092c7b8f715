// Bundles the `pep694` command into one file, dist/cli/pep694.mjs (the package's bin), after
// `tsc -b`. Why: node resolves, reads and compiles each module of an ES module graph on its own,
// and for a command that runs for well under a second that start is a large share of its time.
// One file cut the client's CPU of a 21-file release from 0.64 to 0.53 s (median of 8, scripts/bench).
// The library (`import ... from '@pep694/client'`) is not bundled; third-party client halves are
// still loaded from where they are installed (src/halves.ts).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/cli/', import.meta.url));
await build({
  entryPoints: [`${dist}main.js`],
  outfile: `${dist}pep694.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies (commander, ini, …) call require() for node's own modules.
  banner: { js: "import { createRequire as __pep694Require } from 'node:module'; const require = __pep694Require(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
