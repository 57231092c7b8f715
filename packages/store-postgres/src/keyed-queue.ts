/**
 * Tasks with the same key run one after another, in the order they arrived; tasks with different
 * keys run freely. In-process only: the store uses it so that the write steps of one node queued
 * on one key wait here, without a connection, rather than each holding one of the pool's
 * connections while they wait for the key's advisory lock in PostgreSQL.
 */
export class KeyedQueue {
  /** Per key, a promise that settles once the last task queued on it has finished. */
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let finished!: () => void;
    const mine = new Promise<void>((resolve) => (finished = resolve));
    // The tails only ever resolve (they stand for "finished", whatever the outcome).
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      if (previous) await previous;
      return await task();
    } finally {
      finished();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with a task running or waiting (tests: the map must not grow without bound). */
  get size(): number {
    return this.tails.size;
  }
}
