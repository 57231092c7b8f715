// The session store conformance suite (@pep694/store-conformance) on SqliteSessionStore: a fresh
// database file per test, and a second connection on the same file for the race rules.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionStoreConformance } from '@pep694/store-conformance';
import { SqliteSessionStore } from './sqlite/store.js';

sessionStoreConformance({
  name: 'SqliteSessionStore',
  open() {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-sqlite-conformance-'));
    const file = join(dir, 'store.sqlite');
    const store = new SqliteSessionStore(file);
    return {
      store,
      connect: () => new SqliteSessionStore(file),
      async dispose() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
