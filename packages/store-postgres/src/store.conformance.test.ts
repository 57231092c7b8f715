// The session store conformance suite (@pep694/store-conformance) on PostgresSessionStore: a
// fresh database per test, and a second pool on it (as a second node would have) for the race rules.
import { sessionStoreConformance } from '@pep694/store-conformance';
import { openTestStore } from './testing/index.js';

sessionStoreConformance({
  name: 'PostgresSessionStore',
  async open() {
    const t = await openTestStore();
    return { store: t.store, connect: () => t.connect(), dispose: () => t.dispose() };
  },
});
