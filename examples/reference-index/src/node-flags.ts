/**
 * The node flags the reference index is run with: by `pnpm start` (both package.json files), by
 * the cluster example for each node, and by `pnpm bench` for every server it measures, ours and
 * the raw peers alike. `node-flags.test.ts` keeps those places in step with this list.
 *
 * Both flags keep V8 out of storms of mark-compact collections under upload load, which cost the
 * index more CPU than its requests do (README "Node flags"):
 *
 * - `--max-semi-space-size=8`: a young generation of up to 8 MiB per semi-space. Without it, 12–13
 *   mark-compacts per batch of 64 MiB uploads instead of 0–1, up to 1.5× the server CPU per GB.
 * - `--initial-old-space-size=128`: no mark-compact while the old generation is below 128 MiB.
 *   With the first flag only, once the heap had been collected (after about 35 releases of 21
 *   files of 1 MiB), V8 set its next limit so close above the live heap (about 24 MiB) that it
 *   started marking again right after each collection: two mark-compacts per release, whose
 *   concurrent marking took the second core from the client. Measured on the bench machine (2
 *   cores), 90 alternating releases against two servers side by side: server CPU per release 200
 *   → 120 ms (median), the release's wall time −40 ms (paired median; 89 of 90 faster); a 1 GiB
 *   upload 3.0 → 1.7 s of server CPU (8 alternating runs). The price is memory: garbage now
 *   builds up to 128 MiB before it is collected, and the peak RSS after those 90 releases was 208
 *   MiB instead of 132 (after one 1 GiB upload 128 instead of 141). 64 measured the same here,
 *   with a live heap of 24 MiB; 128 leaves room above it for the simple index's page cache
 *   (`index.pageCacheBytes`, 32 MiB by default): `--trace-incremental-marking` showed the storm's
 *   limits 16 MiB above the live heap, and a live heap that close to the configured size would
 *   bring it back.
 *
 * `--initial-old-space-size` is refused in `NODE_OPTIONS`: give it on the command line.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--initial-old-space-size=128'];

/** The flags of `NODE_FLAGS` this process was not started with (`process.execArgv`). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
