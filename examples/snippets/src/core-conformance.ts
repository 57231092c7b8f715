// The conformance call of packages/core/README.md.
import type { MechanismPlugin } from '@pep694/core';
import type { ClientHalf } from '@pep694/server/testing';
// readme:start
// src/conformance.test.ts; vitest.config.ts loads 'reflect-metadata' first: test: { setupFiles: ['reflect-metadata'] }
import { mechanismConformance } from '@pep694/server/testing';
mechanismConformance({ plugin, options: { operator: 'acme' }, client: myClientHalf });
// readme:end

// Your plugin (the default export of src/index.ts) and your client half.
declare const plugin: MechanismPlugin<unknown>;
declare const myClientHalf: ClientHalf;
