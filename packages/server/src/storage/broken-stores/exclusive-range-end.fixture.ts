// Run by ../store-suite.test.ts in a child vitest: the blob store suite with defect "exclusive-range-end".
import { blobStoreConformance } from '@pep694/store-conformance';
import { openBlobStore } from './stores.js';

blobStoreConformance({ name: 'exclusive-range-end', open: () => openBlobStore('exclusive-range-end') });
