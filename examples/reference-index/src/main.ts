#!/usr/bin/env node
/**
 * The reference index: what `pnpm start` runs. Upload 2.0 root at /upload/, the published simple
 * index at /simple/, stage previews at /stage/{session-token}/, data in ./data, every first-party
 * mechanism that has landed, and the distribution validator. Environment: PEP694_HOST, PEP694_PORT,
 * PEP694_DATA, PEP694_TOKENS_FILE, PEP694_PUBLIC_URL, PEP694_ALLOWED_HOSTS (comma-separated Host
 * values served; default: the address listened on), PEP694_CONFIG (a JSON file choosing the
 * mechanisms and their order), PEP694_LOG_LEVEL, PEP694_VALIDATE_ARTIFACTS (0: no archive checks),
 * PEP694_MAX_STAGED_BYTES, PEP694_MAX_NEW_PROJECTS, PEP694_NEW_PROJECTS_WINDOW (per-principal limits),
 * PEP694_TRUSTED_PUBLISHERS_FILE, PEP694_SIGSTORE_TRUSTED_ROOT, PEP694_SIGSTORE_CTLOG_THRESHOLD (PEP 740
 * attestations, verified with Sigstore: see attestations.ts),
 * PEP694_METRICS (0: no /metrics), PEP694_METRICS_TOKEN (/metrics behind a bearer token),
 * PEP694_BLOBS (an s3:// URL: file bytes in S3-compatible object storage, and the
 * vnd-pep694-s3multipart-presigned mechanism; see blobs.ts),
 * PEP694_DOWNLOAD_REDIRECT_TTL (seconds: with S3, downloads redirect to presigned URLs),
 * PEP694_DATABASE_URL (postgres://…: sessions in PostgreSQL, shared by any number of nodes; unset:
 * SQLite in the data directory) and PEP694_DATABASE_POOL_SIZE; for one node of several
 * (docs/scaling.md), PEP694_NODE_ID, PEP694_REAPER_INTERVAL, PEP694_WORK_LEASE_TTL and
 * PEP694_DEFER_VERIFICATION_ABOVE. With both PEP694_DATABASE_URL and an s3:// PEP694_BLOBS, tus
 * uploads in progress live in the bucket and their locks in PostgreSQL, so any node continues them
 * (tus-shared.ts).
 */
import 'reflect-metadata';
import { resolve } from 'node:path';
import { createDistributionValidator } from '@pep694/dist-validator';
import { createServer } from '@pep694/server';
import { attestationVerifierFromEnv } from './attestations.js';
import { S3BlobStore } from '@pep694/blobs-s3';
import { blobsFromEnv } from './blobs.js';
import { loadMechanisms } from './mechanisms.js';
import { missingNodeFlags, NODE_FLAGS } from './node-flags.js';
import { describeStore, positiveIntEnv, sessionStoreFromEnv } from './session-store.js';
import { sharedTusFromEnv } from './tus-shared.js';

/** Per-principal limits the operator may set (see the server README's configuration table). */
function limitsFromEnv() {
  const limits = {
    maxStagedBytesPerPrincipal: positiveIntEnv('PEP694_MAX_STAGED_BYTES'),
    maxNewProjectsPerWindow: positiveIntEnv('PEP694_MAX_NEW_PROJECTS'),
    newProjectsWindow: positiveIntEnv('PEP694_NEW_PROJECTS_WINDOW'),
    deferVerificationAbove: positiveIntEnv('PEP694_DEFER_VERIFICATION_ABOVE'),
  };
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

/**
 * Running as one node of several (docs/scaling.md): PEP694_NODE_ID names it in `X-PEP694-Node`;
 * PEP694_REAPER_INTERVAL and PEP694_WORK_LEASE_TTL (seconds) bound how soon a dead node's deferred
 * work is taken over (lease expiry, then the next recovery pass).
 */
function nodeFromEnv(): { nodeId?: string; reaperInterval?: number; workLeaseTtl?: number } {
  const reaper = positiveIntEnv('PEP694_REAPER_INTERVAL');
  const lease = positiveIntEnv('PEP694_WORK_LEASE_TTL');
  return {
    ...(process.env.PEP694_NODE_ID ? { nodeId: process.env.PEP694_NODE_ID } : {}),
    ...(reaper !== undefined ? { reaperInterval: reaper * 1000 } : {}),
    ...(lease !== undefined ? { workLeaseTtl: lease * 1000 } : {}),
  };
}

/** PEP694_DOWNLOAD_REDIRECT_TTL (seconds): downloads redirect to presigned URLs of the blob store, where it has them (S3). */
function downloadRedirectFromEnv(): { downloadRedirectTtl?: number } {
  const ttl = positiveIntEnv('PEP694_DOWNLOAD_REDIRECT_TTL');
  return ttl === undefined ? {} : { downloadRedirectTtl: ttl };
}

async function main(): Promise<void> {
  const host = process.env.PEP694_HOST ?? '127.0.0.1';
  const port = Number(process.env.PEP694_PORT ?? 8694);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PEP694_PORT must be a port number, not ${process.env.PEP694_PORT}`);
  const dataDir = resolve(process.env.PEP694_DATA ?? 'data');
  // Unset: the index answers only for the address it listens on (e.g. 127.0.0.1:8694 and localhost:8694).
  const allowedHosts = process.env.PEP694_ALLOWED_HOSTS?.split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');

  const attestations = attestationVerifierFromEnv();
  const blobs = await blobsFromEnv();
  const store = await sessionStoreFromEnv();
  const server = await createServer({
    ...(blobs.blobs && { blobs: blobs.blobs }),
    ...(store ? { store } : {}),
    attestationVerifier: attestations.verifier,
    config: {
      dataDir,
      ...(process.env.PEP694_PUBLIC_URL ? { publicUrl: process.env.PEP694_PUBLIC_URL } : {}),
      ...(allowedHosts ? { allowedHosts } : {}),
      // Stage previews at /stage/{session-token}/ and the published index at /simple/.
      index: downloadRedirectFromEnv(),
      // The legacy upload API at /legacy/ (twine upload --repository-url …/legacy/), one namespace with Upload 2.0.
      legacy: {},
      limits: limitsFromEnv(),
      ...nodeFromEnv(),
      // GET /metrics: PEP694_METRICS=0 turns it off, PEP694_METRICS_TOKEN puts it behind a bearer token.
      metrics: {
        enabled: process.env.PEP694_METRICS !== '0',
        ...(process.env.PEP694_METRICS_TOKEN ? { token: process.env.PEP694_METRICS_TOKEN } : {}),
      },
    },
    // With PEP694_DATABASE_URL and an s3:// PEP694_BLOBS, tus uploads continue on any node (tus-shared.ts);
    // with S3 blobs, vnd-pep694-s3multipart-presigned is served too.
    mechanisms: await loadMechanisms(process.env.PEP694_CONFIG, {
      tus: sharedTusFromEnv(),
      s3: blobs.blobs instanceof S3BlobStore ? blobs.blobs : undefined,
    }),
    // Wheels and sdists must be readable archives whose metadata names the session's release
    // (PEP694_VALIDATE_ARTIFACTS=0 turns this off, e.g. for tests that upload placeholder bytes).
    validators: process.env.PEP694_VALIDATE_ARTIFACTS === '0' ? [] : [createDistributionValidator()],
  });
  const { url } = await server.listen(port, host);
  const missingFlags = missingNodeFlags();

  const lines = [
    `pep694 reference index`,
    `  Upload 2.0 root:  ${url}`,
    `  simple index:     ${new URL(server.config.index!.simplePath, url).href}  (pip install --index-url …)`,
    `  stage previews:   ${new URL(server.config.index!.stagePath, url).href}{session-token}/`,
    `  legacy upload:    ${new URL(server.config.legacy!.path, url).href}  (twine upload --repository-url …)`,
    `  hosts served:     ${allowedHosts?.join(', ') ?? (process.env.PEP694_PUBLIC_URL ? 'any (links use PEP694_PUBLIC_URL)' : 'the address above, and localhost on loopback (PEP694_ALLOWED_HOSTS for others)')}`,
    `  attestations:     ${attestations.description}`,
    `  mechanisms:       ${server.mechanisms.map((m) => m.identifier).join(', ') || '(none)'}`,
    `  data:             ${dataDir}`,
    `  operations:       ${new URL('/healthz', url).href}, /readyz${server.config.metrics.enabled ? `, /metrics${server.config.metrics.token ? ' (bearer token)' : ''}` : ''}`,
    `  file bytes:       ${blobs.describe}`,
    `  sessions:         ${describeStore() ?? `SQLite in ${dataDir} (PEP694_DATABASE_URL for PostgreSQL)`}`,
    `  node flags:       ${missingFlags.length === 0 ? NODE_FLAGS.join(' ') : `without ${missingFlags.join(' ')}: V8 may spend more CPU collecting than serving (README "Node flags")`}`,
  ];
  if (server.devToken?.created) {
    lines.push(`  dev token:        ${server.devToken.token}  (shown once; kept in ${server.devToken.file})`);
  } else if (server.devToken) {
    lines.push(`  dev token:        in ${server.devToken.file} (set PEP694_TOKENS_FILE for real tokens)`);
  } else lines.push(`  tokens:           ${process.env.PEP694_TOKENS_FILE}`);
  lines.push(`  try:              curl -s -H 'Authorization: Bearer <token>' -H 'Content-Type: application/vnd.pypi.upload.v2+json' \\`);
  lines.push(`                      -d '{"meta":{"api-version":"2.0"},"name":"demo-pkg","version":"1.0.0"}' ${url}`);
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(`pep694: ${(err as Error).message}`);
  process.exit(1);
});
