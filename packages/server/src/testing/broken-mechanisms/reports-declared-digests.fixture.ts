// Run by ../mechanism-suite.test.ts in a child vitest: the suite on the fixture mechanism with defect "reports-declared-digests".
import { mechanismConformance } from '../mechanism-suite.js';
import { fixtureClient, fixturePlugin } from './mechanism.js';

mechanismConformance({ plugin: fixturePlugin('reports-declared-digests'), client: fixtureClient, largeSize: 1024 ** 2 });
