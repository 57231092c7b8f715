// Run by ../mechanism-suite.test.ts in a child vitest: the suite on the fixture mechanism with defect "continue-before-auth".
import { mechanismConformance } from '../mechanism-suite.js';
import { fixtureClient, fixturePlugin } from './mechanism.js';

mechanismConformance({ plugin: fixturePlugin('continue-before-auth'), client: fixtureClient, largeSize: 1024 ** 2 });
