import { describe, expect, it } from 'vitest';
import { BLOB_STORE_RULES, SESSION_STORE_RULES, titleOf } from './rules.js';

describe('the rules', () => {
  const all = [...Object.values(SESSION_STORE_RULES), ...Object.values(BLOB_STORE_RULES)];

  it('each names the specification it comes from', () => {
    for (const r of all) expect(r.source, r.rule).toMatch(/PEP 694|RFC 9110/);
  });

  it('have distinct titles, so a report names one test per rule', () => {
    expect(new Set(all.map(titleOf)).size).toBe(all.length);
  });
});
