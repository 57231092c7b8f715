import type { CheckResult } from './checks.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

/** One line per check, naming its PEP 694 section. */
export function formatResult(r: CheckResult): string {
  return `${MARK[r.outcome]}  [PEP 694 "${r.section}"] ${r.title}${r.detail ? `: ${r.detail}` : ''}`;
}

/** The summary line, alone: `N passed, N failed, N skipped`. */
export function summarize(results: readonly CheckResult[]): string {
  const count = (o: CheckResult['outcome']) => results.filter((r) => r.outcome === o).length;
  return `${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`;
}
