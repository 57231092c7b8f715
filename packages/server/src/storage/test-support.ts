/** Helpers of the storage tests (not published). */

/** Whether `p` settled within a few turns of the event loop (the stores' group commits never wait longer). */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}
