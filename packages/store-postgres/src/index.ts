/**
 * `@pep694/store-postgres`: the PEP 694 SessionStore on PostgreSQL 15+ (node-postgres). The
 * `./testing` entry starts a throwaway cluster and fresh databases for tests.
 */
export { PostgresSessionStore, type PostgresSessionStoreOptions } from './store.js';
export type { PostgresConnectionOptions, WriteStats } from './connection.js';
export { migrate, MIGRATIONS } from './migrations.js';
export { PostgresTusLocker, TUS_LOCK_NAMESPACE, type PostgresTusLockerOptions, type RequestRelease, type TusLock } from './tus-locker.js';
export { PostgresAdvisoryLocks, advisoryKey, type AdvisoryLockOptions } from './advisory-lock.js';
