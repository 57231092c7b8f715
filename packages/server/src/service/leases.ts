/**
 * Work that must run once: a deferred verification, a deferred publish, a reaper pass. On one
 * node it must not run twice at once (crash recovery running again while the original work is
 * still under way); with several nodes sharing a store that offers leases
 * (`HousekeepingStore.acquireLease`, e.g. PostgreSQL), only the node holding the work's lease runs
 * it, renews the lease while it runs and gives it up at the end. A node that dies stops renewing,
 * so once its lease runs out another node's recovery pass takes the work over.
 */
import type { HousekeepingStore } from '@pep694/core';
import type { Logger } from 'pino';
import { newId } from './secrets.js';

/** How long a lease lasts without renewal: how long a dead node's work waits to be taken over. */
export const DEFAULT_LEASE_TTL_MS = 30_000;

export class WorkLeases {
  /** This process, as lease owner. */
  readonly owner = newId();
  private readonly running = new Set<string>();

  constructor(
    private readonly store: Pick<HousekeepingStore, 'acquireLease' | 'releaseLease'>,
    private readonly logger: Logger,
    private readonly ttlMs = DEFAULT_LEASE_TTL_MS,
  ) {}

  /** Whether the store is one several nodes may share (it offers leases): then dead nodes' work needs taking over. */
  get shared(): boolean {
    return this.store.acquireLease !== undefined;
  }

  /**
   * Runs `work` unless it is running already: on this node under `key` (unless `locally` is
   * false), or under another node's unexpired lease. Resolves true when it ran.
   */
  async run(key: string, work: () => Promise<void>, opts: { readonly locally?: boolean } = {}): Promise<boolean> {
    const locally = opts.locally ?? true;
    if (locally && this.running.has(key)) return false;
    if (locally) this.running.add(key);
    try {
      const { acquireLease, releaseLease } = this.store;
      if (!acquireLease) {
        await work();
        return true;
      }
      if (!(await acquireLease.call(this.store, key, this.owner, this.ttlMs))) return false;
      const renew = setInterval(() => {
        acquireLease.call(this.store, key, this.owner, this.ttlMs).then(
          (held) => {
            if (!held) this.logger.warn({ key }, 'work lease lost to another node (this node stalled longer than the lease)');
          },
          (err: unknown) => this.logger.warn({ err, key }, 'work lease renewal failed'),
        );
      }, this.ttlMs / 3);
      renew.unref();
      try {
        await work();
      } finally {
        clearInterval(renew);
        await releaseLease
          ?.call(this.store, key, this.owner)
          .catch((err: unknown) => this.logger.warn({ err, key }, 'work lease release failed'));
      }
      return true;
    } finally {
      if (locally) this.running.delete(key);
    }
  }
}
