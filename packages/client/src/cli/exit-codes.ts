/** The `pep694` command's exit codes (documented in the README; scripts and CI branch on them). */
export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** Anything else that went wrong (a bug, an unexpected answer). */
  failure: 1,
  /** Bad arguments or configuration: nothing was sent. */
  usage: 2,
  /** The index refused a request (its problem `detail` and `errors[]` are printed). */
  refused: 3,
  /** `--test-install`: the release did not install or its test failed; it was left staged, not published. */
  testFailed: 4,
  /** The index could not be reached, or the connection failed; re-running the same command resumes. */
  network: 5,
  /** Interrupted (Ctrl+C): the session was canceled, or left staged with `--stage`. */
  interrupted: 130,
} as const;
