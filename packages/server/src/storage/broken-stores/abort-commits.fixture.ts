// Run by ../store-suite.test.ts in a child vitest: the blob store suite with defect "abort-commits".
import { blobStoreConformance } from '@pep694/store-conformance';
import { openBlobStore } from './stores.js';

blobStoreConformance({ name: 'abort-commits', open: () => openBlobStore('abort-commits') });
