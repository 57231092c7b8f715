// The plugin's options and registration: one mechanism per interop version, in order, under
// `vnd-<operator>-resumable-i<N>`; a missing operator or directory, a malformed operator, a repeated
// version or an unknown key stops startup.
import { collectMechanisms, MECHANISM_HOST, MechanismRegistrationError, registerPlugin, type MechanismHost } from '@pep694/core';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import plugin, { ProcessLocks, ResumableOptionsSchema } from './index.js';

const host = { blobs: {}, authorizeTransfer: async () => undefined, sendProblem: () => {} } as unknown as MechanismHost;

function mechanismsFor(options: unknown): string[] {
  const c = container.createChildContainer();
  c.register(MECHANISM_HOST, { useValue: host });
  registerPlugin(c, plugin, options);
  return collectMechanisms(c).map((m) => m.identifier);
}

describe('options', () => {
  it('serves both interop versions by default, i6 first, and one when asked', () => {
    expect(mechanismsFor({ operator: 'acme', directory: '/tmp/x' })).toEqual(['vnd-acme-resumable-i6', 'vnd-acme-resumable-i8']);
    expect(mechanismsFor({ operator: 'acme', directory: '/tmp/x', interopVersions: [8] })).toEqual(['vnd-acme-resumable-i8']);
    expect(mechanismsFor({ operator: 'acme', directory: '/tmp/x', interopVersions: [8, 6] })).toEqual([
      'vnd-acme-resumable-i8',
      'vnd-acme-resumable-i6',
    ]);
  });

  it('takes a shared directory with a lock, and keeps the lock object as given', () => {
    const lock = new ProcessLocks();
    const parsed = ResumableOptionsSchema.parse({ operator: 'acme', directory: '/tmp/x', shared: true, lock });
    expect(parsed.shared).toBe(true);
    expect(parsed.lock).toBe(lock);
  });

  it('refuses what cannot be served', () => {
    for (const bad of [
      { directory: '/tmp/x' },
      { operator: 'acme' },
      { operator: 'Acme', directory: '/tmp/x' },
      { operator: 'acme', directory: '/tmp/x', interopVersions: [] },
      { operator: 'acme', directory: '/tmp/x', interopVersions: [6, 6] },
      { operator: 'acme', directory: '/tmp/x', interopVersions: [7] },
      { operator: 'acme', directory: '/tmp/x', maxAppendSize: 0 },
      { operator: 'acme', directory: '/tmp/x', chunkSize: 5 },
      // A directory shared by several processes without a lock across them would let two appends write at once.
      { operator: 'acme', directory: '/tmp/x', shared: true },
      { operator: 'acme', directory: '/tmp/x', shared: true, lock: {} },
    ]) {
      expect(ResumableOptionsSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
      expect(() => mechanismsFor(bad), JSON.stringify(bad)).toThrow(MechanismRegistrationError);
    }
  });
});
