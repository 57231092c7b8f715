/**
 * The store's pool of connections to PostgreSQL, and the one way it writes: every write step is a
 * SERIALIZABLE transaction, retried when PostgreSQL aborts it for a serialization failure, a
 * deadlock or a unique violation.
 *
 * The uniqueness rules of PEP 694 are unique indexes in the schema (./migrations.ts), and the
 * read-check-write steps (is a session for this release live? is this identity published?) run
 * under SERIALIZABLE, so PostgreSQL itself settles races between any number of connections and
 * nodes: of two steps that would each have decided differently had they seen the other, one is
 * aborted (SQLSTATE 40001), and its retry sees the winner and returns the proper result kind
 * ('exists', 'conflict', ...). No lock of one process is involved.
 *
 * Steps that are bound to conflict when they run at once (creates and updates of files in one
 * publishing session: each create reads the session's files and adds one, and every such change
 * bumps the session row's `files_version`) can name a write queue: such a step first
 * waits for the queue's advisory lock in PostgreSQL, which every node shares, and only then begins
 * its transaction, so that its snapshot already holds the previous step's commit and PostgreSQL
 * has nothing to abort. The queue only spares the retries: the rules stay held by the constraints
 * and SERIALIZABLE transactions, also for a step that runs without the lock (see `inWriteTransaction`).
 */
import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import type { FileUploadRecord, PublishingSessionRecord } from '@pep694/core';
import { advisoryLockWithin, advisoryUnlock, hashedKey, type BigintKey } from './advisory-keys.js';
import { KeyedQueue } from './keyed-queue.js';
import { fileFromRow, sessionFromRow, type FileRow, type SessionRow } from './rows.js';

/** How the store reaches PostgreSQL. */
export interface PostgresConnectionOptions {
  /** `postgres://user:password@host:port/database` (libpq URL; `?sslmode=…` and friends as node-postgres reads them). */
  readonly connectionString: string;
  /** Most connections the pool opens (default 10). */
  readonly poolSize?: number;
  /** Milliseconds an idle connection stays open (default 10 000). */
  readonly idleTimeoutMillis?: number;
  /** Milliseconds to wait for a connection before a call fails (default 10 000; 0 waits forever). */
  readonly connectionTimeoutMillis?: number;
  /** Most attempts of one write step aborted by serialization failures (default 60). */
  readonly maxAttempts?: number;
  /**
   * Whether write steps that are bound to conflict queue on an advisory lock instead of running
   * at once and being retried (default true; see `inWriteTransaction`).
   */
  readonly queueWrites?: boolean;
  /**
   * Milliseconds a queued write step waits for its queue's lock before it runs without it, and
   * retries on conflicts as any other step (default 5 000): a stuck holder delays, never blocks.
   */
  readonly writeQueueTimeoutMillis?: number;
}

/** Options of one write step. */
export interface WriteStepOptions {
  /**
   * The write queue of the step (for a file create or update: its publishing session): steps of one queue
   * run one at a time, across nodes, in the order they reach PostgreSQL's lock. A step in several
   * queues (a file create: its session's, and its principal's for the staged-bytes quota) runs
   * in all of them; every step takes its queues in the same order (by name), so no two steps
   * ever wait for each other's.
   */
  readonly queue?: string | readonly string[];
}

/** SQLSTATEs after which the whole step is run again: serialization_failure, deadlock_detected, unique_violation. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
const isRetryable = (err: unknown) => typeof err === 'object' && err !== null && RETRYABLE.has((err as { code?: string }).code ?? '');

/**
 * What the store's write steps have cost so far in this process (one connection pool): how many
 * steps ran and how many times PostgreSQL aborted one for a conflict and the store ran it again,
 * by cause. Counters only grow; a reader takes differences.
 */
export interface WriteStats {
  /** Transactions run to their end (write steps and multi-statement reads; committed, or ended by an error not retried). */
  readonly transactions: number;
  /** Attempts rolled back and run again: serialization failures (40001). */
  readonly serializationRetries: number;
  /** … deadlocks (40P01). */
  readonly deadlockRetries: number;
  /** … unique violations (23505). */
  readonly uniqueViolationRetries: number;
  /** Queued write steps that waited `writeQueueTimeoutMillis` for their queue's lock and then ran without it. */
  readonly queueTimeouts: number;
}

/** The advisory lock key of write queue `queue` (a name of its own, apart from other advisory locks: ./advisory-keys.ts). */
export const writeQueueLockKey = (queue: string): BigintKey => hashedKey(`pep694-write-queue:${queue}`);

/** A statement that only reads. */
const READ = /^\s*SELECT\b/i;

/** The OID of int8 (bigint): read as a JS number (sizes, counters: all far below 2^53). */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Something that runs a query: the pool (one statement, autocommit) or a transaction's client. */
export type Queryable = Pick<PoolClient, 'query'>;

export class PostgresConnection {
  readonly pool: pg.Pool;
  private readonly maxAttempts: number;
  /** Whether write steps given a `queue` wait on it (`queueWrites`); when not, a step need not even find its queue. */
  readonly queueWrites: boolean;
  private readonly queueTimeoutMs: number;
  private readonly localQueue = new KeyedQueue();
  private readonly counts = { transactions: 0, serializationRetries: 0, deadlockRetries: 0, uniqueViolationRetries: 0, queueTimeouts: 0 };

  constructor(opts: PostgresConnectionOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize ?? 10,
      idleTimeoutMillis: opts.idleTimeoutMillis ?? 10_000,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000,
      types,
    });
    // An idle connection the server drops (a restart, a network cut) must not crash the process:
    // the pool discards it and opens another on the next call.
    this.pool.on('error', () => {});
    this.maxAttempts = opts.maxAttempts ?? 60;
    this.queueWrites = opts.queueWrites ?? true;
    this.queueTimeoutMs = Math.max(1, Math.floor(opts.writeQueueTimeoutMillis ?? 5000));
  }

  /**
   * Rows of one statement (outside a transaction, a single statement sees one snapshot).
   *
   * PostgreSQL text cannot hold a NUL character, and refuses a parameter with one (22021), where
   * SQLite would simply find nothing: a URL such as `sessions/%00` reaches the store's lookups as
   * such a string. No stored value can equal it, and the store's reads compare parameters by
   * equality only, so a read given one answers no rows, as it would for any other unknown key.
   */
  async rows<R extends QueryResultRow>(sql: string, params: readonly unknown[] = [], on: Queryable = this.pool): Promise<R[]> {
    if (READ.test(sql) && params.some((p) => typeof p === 'string' && p.includes('\0'))) return [];
    return (await on.query<R>(sql, params as unknown[])).rows;
  }

  /** The first row of one statement, or undefined. */
  async row<R extends QueryResultRow>(sql: string, params: readonly unknown[] = [], on: Queryable = this.pool): Promise<R | undefined> {
    return (await this.rows<R>(sql, params, on))[0];
  }

  /**
   * One atomic write step: `step` runs in a SERIALIZABLE transaction and runs again, from the
   * start on a fresh snapshot, whenever PostgreSQL aborts it for a conflict with another
   * transaction (see the module comment). `step` must therefore do nothing but queries on `c`.
   *
   * With `queue`, each attempt first takes the queue's advisory lock (of several queues, each
   * one's in turn, by name; session-level, on the attempt's connection, before BEGIN: a
   * SERIALIZABLE transaction's snapshot is taken by its first statement, so a lock taken inside it
   * would come too late to show the previous holder's commit) and lets go of it after COMMIT or
   * ROLLBACK. Within this node, the steps of one queue also wait for each other before they take
   * a connection, so a queue holds one of the pool's connections at a time, not one per waiting
   * step. A step that cannot have the lock within
   * `writeQueueTimeoutMillis` runs without it; a connection lost while it is held takes the lock
   * with it. Either way the transaction is the same SERIALIZABLE one: the lock decides the order,
   * never the outcome.
   */
  async inWriteTransaction<T>(step: (c: PoolClient) => Promise<T>, opts: WriteStepOptions = {}): Promise<T> {
    const queues = [...new Set(typeof opts.queue === 'string' ? [opts.queue] : (opts.queue ?? []))].sort();
    if (queues.length === 0 || !this.queueWrites) return this.inTransaction('ISOLATION LEVEL SERIALIZABLE', step);
    const lockKeys = queues.map(writeQueueLockKey);
    // In this node's queues in that order too, the first outermost.
    const run = queues.reduceRight<() => Promise<T>>(
      (inner, queue) => () => this.localQueue.run(queue, inner),
      () => this.inTransaction('ISOLATION LEVEL SERIALIZABLE', step, lockKeys),
    );
    return run();
  }

  /**
   * A write step at READ COMMITTED, run again on the same errors as `inWriteTransaction`. Only for
   * a step whose reads no other transaction can invalidate: forgetting the sessions that ended
   * before the retention deletes rows nobody changes any more (a terminal session gets no files,
   * claims or reservations). SERIALIZABLE, such a step's reads conflicted with every concurrent
   * create, and it lost to them (./housekeeping.ts).
   */
  async inReadCommittedTransaction<T>(step: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.inTransaction('ISOLATION LEVEL READ COMMITTED', step);
  }

  /** One consistent snapshot for a read of several statements. */
  async inReadSnapshot<T>(step: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.inTransaction('ISOLATION LEVEL REPEATABLE READ READ ONLY', step);
  }

  private async inTransaction<T>(mode: string, step: (c: PoolClient) => Promise<T>, lockKeys: readonly BigintKey[] = []): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      const held: BigintKey[] = [];
      try {
        for (const key of lockKeys) if (await this.takeQueueLock(client, key)) held.push(key);
        await client.query(`BEGIN ${mode}`);
        const result = await step(client);
        await client.query('COMMIT');
        this.counts.transactions++;
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
        if (!isRetryable(err) || attempt >= this.maxAttempts) {
          this.counts.transactions++;
          throw err;
        }
        this.countRetry((err as { code: string }).code);
      } finally {
        for (const key of held.reverse()) {
          if (broken) break;
          await advisoryUnlock(client, key).catch((unlockErr: unknown) => {
            broken = unlockErr instanceof Error ? unlockErr : new Error(String(unlockErr));
          });
        }
        // A connection that could not even roll back (or let go of its lock) is destroyed, not
        // handed to the next caller: PostgreSQL ends its session, and with it the session's locks.
        client.release(broken);
      }
      await backoff(attempt);
    }
  }

  /** Waits up to the queue timeout for the advisory lock `key` on `client`'s session; whether it has it. */
  private async takeQueueLock(client: PoolClient, key: BigintKey): Promise<boolean> {
    if (await advisoryLockWithin(client, key, this.queueTimeoutMs)) return true;
    // The holder takes too long: go on without the queue.
    this.counts.queueTimeouts++;
    return false;
  }

  /** The counters of the write steps so far (a copy). */
  writeStats(): WriteStats {
    return { ...this.counts };
  }

  private countRetry(code: string): void {
    if (code === '40001') this.counts.serializationRetries++;
    else if (code === '40P01') this.counts.deadlockRetries++;
    else this.counts.uniqueViolationRetries++;
  }

  /** The session as stored; shared by the roles that answer with sessions. */
  async readSession(id: string, on: Queryable = this.pool): Promise<PublishingSessionRecord | undefined> {
    const row = await this.row<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id], on);
    return row && sessionFromRow(row);
  }

  /** The file as stored, with its metadata bytes; shared by the roles that read one file. */
  async readFile(id: string, on: Queryable = this.pool): Promise<FileUploadRecord | undefined> {
    const row = await this.row<FileRow>('SELECT * FROM files WHERE id = $1', [id], on);
    return row && fileFromRow(row);
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

/**
 * Waits before a retry: a random time up to a bound doubling from 2 ms to 200 ms, so that the
 * losers of one conflict do not collide again in lockstep.
 */
function backoff(attempt: number): Promise<void> {
  const bound = Math.min(200, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * bound));
}
