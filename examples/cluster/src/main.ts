#!/usr/bin/env node
/**
 * `pnpm cluster` (from the repository root): PostgreSQL, s3rver, N reference-index nodes and a
 * round-robin proxy on this machine, as docs/scaling.md draws it. Prints the URLs and a token;
 * Ctrl+C (or SIGTERM) stops everything and removes what it created.
 *
 *   pnpm cluster [--nodes N] [--port P]
 *
 * Environment: CLUSTER_NODES, CLUSTER_PORT (the same as the flags; port default 8694),
 * PEP694_LOG_LEVEL (the nodes' pino level, default `warn`), and any other PEP694_* variable of
 * the reference index, passed to every node.
 */
import { parseArgs } from 'node:util';
import { startCluster } from './cluster.js';

function positive(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n < min || n > 65535) throw new Error(`${name} must be an integer from ${min}, not ${JSON.stringify(raw)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { nodes: { type: 'string' }, port: { type: 'string' } } });
  const nodes = positive('--nodes', values.nodes ?? process.env.CLUSTER_NODES, 3, 1);
  const port = positive('--port', values.port ?? process.env.CLUSTER_PORT, 8694, 0);
  console.log(`starting PostgreSQL, s3rver, ${nodes} node${nodes > 1 ? 's' : ''} and the proxy…`);
  const cluster = await startCluster({
    nodes,
    port,
    env: { PEP694_LOG_LEVEL: process.env.PEP694_LOG_LEVEL ?? 'warn' },
    onNodeOutput: (node, line) => console.log(`[${node}] ${line}`),
    log: (line) => console.log(`[proxy] ${line}`),
  });
  const pg = new URL(cluster.databaseUrl);
  console.log(
    [
      '',
      'pep694 cluster',
      `  proxy (round robin):  ${cluster.url}   Upload 2.0 root ${cluster.root}`,
      `  published index:      ${cluster.url}/simple/   (pip install --index-url …)`,
      `  legacy upload:        ${cluster.url}/legacy/   (twine upload --repository-url …)`,
      ...cluster.nodes.map((n) => `  ${`${n.name}:`.padEnd(22)}${n.origin}   (pid ${n.child.pid}; /healthz /readyz /metrics)`),
      `  PostgreSQL:           ${pg.host}${pg.pathname}`,
      `  S3 (s3rver):          ${cluster.blobs}`,
      `  token:                ${cluster.token}`,
      `  try:                  curl -si -H 'Authorization: Bearer ${cluster.token}' -H 'Content-Type: application/vnd.pypi.upload.v2+json' \\`,
      `                          -d '{"meta":{"api-version":"2.0"},"name":"demo-pkg","version":"1.0.0"}' ${cluster.root}`,
      `                        (X-PEP694-Node names the node that answered)`,
      `  upload:               pnpm pep694 upload --repository-url ${cluster.root} --token ${cluster.token} dist/*`,
      '  Ctrl+C stops everything.',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.log(`${signal} again: leaving now (temp directories may remain)`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: stopping the nodes, the proxy, s3rver and PostgreSQL…`);
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`pep694 cluster: ${(err as Error).message}`);
  process.exit(1);
});
