/** @pep694/conformance: a black-box checker of PEP 694 servers. */
export { runConformance, type CheckResult, type ConformanceOptions } from './checks.js';
export { formatResult, summarize } from './report.js';
