/** KeyedQueue: one task at a time per key, in arrival order; other keys run alongside; a failure does not block the queue. */
import { expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

it('runs the tasks of one key one at a time, in arrival order, and other keys alongside', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const task = (key: string, i: number) =>
    q.run(key, async () => {
      if (key === 'a') most = Math.max(most, ++running);
      log.push(`${key}${i}+`);
      await tick();
      log.push(`${key}${i}-`);
      if (key === 'a') running--;
      return i;
    });
  const results = await Promise.all([task('a', 1), task('a', 2), task('b', 1), task('a', 3)]);
  expect(results).toEqual([1, 2, 1, 3]);
  expect(most).toBe(1);
  expect(log.filter((e) => e.startsWith('a'))).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
  // b did not wait for the a's.
  expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
  expect(q.size).toBe(0);
});

it('a task that fails passes on to the next one, and its caller gets the error', async () => {
  const q = new KeyedQueue();
  const failing = q.run('k', async () => {
    await tick();
    throw new Error('boom');
  });
  const next = q.run('k', async () => 'ran');
  await expect(failing).rejects.toThrow('boom');
  await expect(next).resolves.toBe('ran');
  expect(q.size).toBe(0);
});
