/**
 * The SQLite session store moved to ./sqlite/ (one file per job); this path stays for the imports
 * that still use it (app.ts).
 */
export { SqliteSessionStore, type SqliteSessionStoreOptions } from './sqlite/store.js';
