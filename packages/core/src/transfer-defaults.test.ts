// The shared defaults are the values the plugins' READMEs and the server README document; a
// change here is a change of documented behaviour, so it must be deliberate.
import { describe, expect, it } from 'vitest';
import { LingerBudgetSchema } from './mechanism-options.js';
import { DEFAULT_ATTESTATIONS_MAX_BYTES, DEFAULT_IDLE_TIMEOUT, DEFAULT_LINGER, DEFAULT_MIN_RATE } from './transfer-defaults.js';

describe('shared mechanism option defaults', () => {
  it('are the documented values: idle 120 s, 1 KiB/s, attestations 1 MiB, linger 1 MiB / 2 s', () => {
    expect(DEFAULT_IDLE_TIMEOUT).toBe(120_000);
    expect(DEFAULT_MIN_RATE).toBe(1024);
    expect(DEFAULT_ATTESTATIONS_MAX_BYTES).toBe(1024 * 1024);
    expect(DEFAULT_LINGER).toEqual({ bytes: 1024 * 1024, ms: 2000 });
  });

  it('LingerBudgetSchema defaults to DEFAULT_LINGER and refuses unknown keys and negative values', () => {
    expect(LingerBudgetSchema.parse(undefined)).toEqual(DEFAULT_LINGER);
    expect(LingerBudgetSchema.parse({ bytes: 0, ms: 10 })).toEqual({ bytes: 0, ms: 10 });
    expect(LingerBudgetSchema.safeParse({ bytes: -1, ms: 10 }).success).toBe(false);
    expect(LingerBudgetSchema.safeParse({ bytes: 1, ms: 10, extra: 1 }).success).toBe(false);
  });
});
