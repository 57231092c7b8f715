/**
 * The entry of the `pep694` command's bin, dist/cli/pep694.cjs (scripts/bundle.mjs bundles it as
 * CommonJS): the command itself, dist/cli/pep694-main.cjs, run through its code cache (launcher.ts).
 */
import { join } from 'node:path';
import { cacheDirOf, runWithCodeCache } from './launcher.js';

// Only ever run as the bundled CommonJS bin, where __dirname is dist/cli.
declare const __dirname: string;
runWithCodeCache(join(__dirname, 'pep694-main.cjs'), cacheDirOf(process.argv.slice(2), process.env));
