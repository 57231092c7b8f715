// Run by ../store-suite.test.ts in a child vitest: the session store suite with defect "publish-drops-unfinished".
import { sessionStoreConformance } from '@pep694/store-conformance';
import { openSessionStore } from './stores.js';

sessionStoreConformance({ name: 'publish-drops-unfinished', open: () => openSessionStore('publish-drops-unfinished') });
