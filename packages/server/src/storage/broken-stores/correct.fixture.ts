// Run by ../store-suite.test.ts in a child vitest: both suites on the wrapped real stores, no defect.
import { blobStoreConformance, sessionStoreConformance } from '@pep694/store-conformance';
import { openBlobStore, openSessionStore } from './stores.js';

sessionStoreConformance({ name: 'correct', open: () => openSessionStore('none') });
blobStoreConformance({ name: 'correct', open: () => openBlobStore('none') });
