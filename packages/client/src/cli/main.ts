/**
 * The `pep694` command. Ctrl+C aborts the run (the upload cancels its session unless it was
 * started with --stage: PEP 694 "Graceful cancellation"); a second Ctrl+C quits at once.
 */
import { setMaxListeners } from 'node:events';
import { run } from './program.js';

// `pnpm pep694 …` runs in the repository root; paths on its command line are the caller's.
if (process.env['npm_lifecycle_event'] === 'pep694' && process.env['INIT_CWD']) process.chdir(process.env['INIT_CWD']);

const controller = new AbortController();
// Every request in flight listens to it (with --parallel 21, more than node's default of 10 listeners warns about).
setMaxListeners(0, controller.signal);
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts > 1) process.exit(130);
  controller.abort(new Error('interrupted'));
});
// A closed pipe (`pep694 … | head`) ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

// A promise chain, not a top-level await: the bundle the bin runs is CommonJS (scripts/bundle.mjs).
void run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
  isTTY: process.stdout.isTTY === true,
}).then((code) => {
  // Exit now: an idle keep-alive socket must not hold the process (stdout to a pipe, file or terminal is synchronous on Linux).
  process.exit(code);
});
