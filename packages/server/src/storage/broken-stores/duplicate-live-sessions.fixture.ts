// Run by ../store-suite.test.ts in a child vitest: the session store suite with defect "duplicate-live-sessions".
import { sessionStoreConformance } from '@pep694/store-conformance';
import { openSessionStore } from './stores.js';

sessionStoreConformance({ name: 'duplicate-live-sessions', open: () => openSessionStore('duplicate-live-sessions') });
