/** Helpers of the storage tests (not published). */
import { readdir, readlink } from 'node:fs/promises';

/** What this process's descriptors are open on (Linux: /proc/self/fd); a removed file's or directory's path ends in " (deleted)". */
export async function openDescriptorTargets(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  // '' for a descriptor closed meanwhile (the readdir's own).
  return Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
}

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
