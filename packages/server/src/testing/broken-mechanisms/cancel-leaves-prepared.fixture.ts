// Run by ../mechanism-suite.test.ts in a child vitest: the suite on the fixture mechanism with defect "cancel-leaves-prepared".
import { mechanismConformance } from '../mechanism-suite.js';
import { fixtureClient, fixturePlugin } from './mechanism.js';

mechanismConformance({ plugin: fixturePlugin('cancel-leaves-prepared'), client: fixtureClient, largeSize: 1024 ** 2 });
