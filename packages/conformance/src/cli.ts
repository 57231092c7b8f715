#!/usr/bin/env node
/**
 * pep694-conformance --root <URL> --token <T> [--token-noperm <T2>] [--simple <URL>] [--project <name>]
 * Drives a PEP 694 server over HTTP, prints one line per check and a summary; exits 1 on failure.
 */
import { parseArgs } from 'node:util';
import { runConformance } from './checks.js';
import { formatResult, summarize } from './report.js';

const USAGE = 'usage: pep694-conformance --root <URL> --token <TOKEN> [--token-noperm <TOKEN>] [--simple <URL>] [--project <NAME>]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        root: { type: 'string' },
        token: { type: 'string' },
        'token-noperm': { type: 'string' },
        simple: { type: 'string' },
        project: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.root || !values.token) {
    console.error(USAGE);
    return 2;
  }
  const results = await runConformance(
    {
      root: values.root,
      token: values.token,
      ...(values['token-noperm'] ? { tokenNoPermission: values['token-noperm'] } : {}),
      ...(values.simple ? { simple: values.simple } : {}),
      ...(values.project ? { project: values.project } : {}),
    },
    (r) => console.log(formatResult(r)),
  );
  console.log(summarize(results));
  return results.some((r) => r.outcome === 'fail') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`pep694-conformance: ${(err as Error).message}`);
    process.exit(2);
  },
);
