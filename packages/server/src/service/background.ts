/**
 * Work the service starts and does not wait for (deferred verification and publish, crash
 * recovery): logged if it fails, and awaited as a whole by `idle()` before the host closes.
 */
import type { Logger } from 'pino';

export class BackgroundTasks {
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly logger: Logger) {}

  /** Starts `task` now; a failure is logged as "`what` failed", never thrown. */
  run(what: string, task: () => Promise<unknown>): void {
    const p = task()
      .catch((err: unknown) => this.logger.error({ err }, `${what} failed`))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Resolves when every task has finished, including tasks those tasks started. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
