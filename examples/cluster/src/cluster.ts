/**
 * The cluster on one machine: a PostgreSQL 15 cluster (`@pep694/store-postgres/testing`: initdb and
 * pg_ctl in a temp directory, as the `postgres` user when root), s3rver (`@pep694/blobs-s3/testing`),
 * N reference-index nodes (`examples/reference-index`, each its own process with its own data
 * directory, all with the same `PEP694_DATABASE_URL`, `PEP694_BLOBS`, tokens file and
 * `PEP694_RESUMABLE_DIR`, the resumable uploads in progress) and the
 * round-robin proxy in front (`proxy.ts`), whose origin every node uses for its links
 * (`PEP694_PUBLIC_URL`). `pnpm cluster` (main.ts) and the cluster test start it through here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { NODE_FLAGS } from '@pep694/reference-index/node-flags';
import { startTestCluster, type TestCluster } from '@pep694/store-postgres/testing';
import { RoundRobinProxy } from './proxy.js';

/** The reference index's entry point (built), which every node runs. */
export const REFERENCE_INDEX_MAIN = join(
  dirname(createRequire(import.meta.url).resolve('@pep694/reference-index/package.json')),
  'dist',
  'main.js',
);

export interface ClusterOptions {
  /** Number of nodes (default 3). */
  readonly nodes?: number;
  /** The proxy's port on 127.0.0.1 (default 0: any free port). */
  readonly port?: number;
  /** An existing PostgreSQL database (`postgres://…`) instead of a cluster of our own. */
  readonly databaseUrl?: string;
  /** More environment for every node (`PEP694_LOG_LEVEL`, `PEP694_WORK_LEASE_TTL`, …). */
  readonly env?: Readonly<Record<string, string>>;
  /** Each line a node prints, with its name (default: dropped). */
  readonly onNodeOutput?: (node: string, line: string) => void;
  /** The proxy's events (default: dropped). */
  readonly log?: (line: string) => void;
}

export interface ClusterNode {
  readonly name: string;
  /** `http://127.0.0.1:PORT`: the node itself, bypassing the proxy. */
  readonly origin: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code or signal once the process has ended. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

export interface Cluster {
  /** The proxy's origin, `http://127.0.0.1:PORT`; the Upload 2.0 root is `${url}/upload/`. */
  readonly url: string;
  /** The Upload 2.0 root behind the proxy. */
  readonly root: string;
  /** A token every node accepts, for every project. */
  readonly token: string;
  readonly nodes: readonly ClusterNode[];
  readonly proxy: RoundRobinProxy;
  readonly databaseUrl: string;
  readonly s3: TestS3;
  /** `PEP694_BLOBS` as every node has it. */
  readonly blobs: string;
  /** SIGKILLs a node (as a crash would) and waits until it is gone; the proxy drops it at its next health check. */
  kill(name: string): Promise<void>;
  /** Starts a killed node again under its name, data directory and environment, and puts it back into the rotation. */
  restart(name: string): Promise<void>;
  /** Stops every node (SIGTERM: in-flight work finishes), the proxy, s3rver and PostgreSQL; removes every temp directory. */
  stop(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`the number of nodes must be a positive integer, not ${count}`);
  const work = mkdtempSync(join(tmpdir(), 'pep694-cluster-'));
  const undo: (() => Promise<void>)[] = [async () => rmSync(work, { recursive: true, force: true })];
  const unwind = async () => {
    for (const step of undo.reverse()) await step().catch(() => {});
  };
  try {
    let pg: TestCluster | undefined;
    if (!opts.databaseUrl) {
      pg = await startTestCluster();
      undo.push(() => pg!.stop());
    }
    const databaseUrl = opts.databaseUrl ?? pg!.url;
    const s3 = await startS3rver();
    undo.push(() => s3.close());
    const { env: blobsEnv } = await s3.blobsEnv();

    const token = `cluster-${randomBytes(18).toString('base64url')}`;
    const tokensFile = join(work, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token, principal: 'cluster', projects: ['*'] }] }), { mode: 0o600 });

    const proxy = new RoundRobinProxy({ ...(opts.log ? { log: opts.log } : {}) });
    const url = await proxy.listen(opts.port ?? 0);
    undo.push(() => proxy.close());

    const nodes: ClusterNode[] = [];
    undo.push(async () => {
      await Promise.all(nodes.map((n) => stopNode(n)));
    });
    const nodeEnv = {
      ...blobsEnv,
      PEP694_DATABASE_URL: databaseUrl,
      // One directory of resumable uploads for all nodes (a shared filesystem in production).
      PEP694_RESUMABLE_DIR: join(work, 'resumable'),
      PEP694_TOKENS_FILE: tokensFile,
      PEP694_PUBLIC_URL: url,
      ...opts.env,
    };
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => startNode(`node-${i + 1}`, join(work, `node-${i + 1}`), nodeEnv, opts.onNodeOutput)),
    );
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    for (const n of nodes) proxy.add({ name: n.name, origin: n.origin });
    await proxy.checkHealth();

    return {
      url,
      root: `${url}/upload/`,
      token,
      nodes,
      proxy,
      databaseUrl,
      s3,
      blobs: blobsEnv.PEP694_BLOBS,
      async kill(name) {
        const node = nodes.find((n) => n.name === name);
        if (!node) throw new Error(`no node ${name}`);
        node.child.kill('SIGKILL');
        await node.exited;
      },
      async restart(name) {
        const i = nodes.findIndex((n) => n.name === name);
        if (i < 0) throw new Error(`no node ${name}`);
        if (nodes[i]!.child.exitCode === null && nodes[i]!.child.signalCode === null) throw new Error(`${name} is still running`);
        const node = await startNode(name, join(work, name), nodeEnv, opts.onNodeOutput);
        nodes[i] = node;
        // A new port: the proxy forgets the old member and takes the new one.
        proxy.remove(name);
        proxy.add({ name, origin: node.origin });
        await proxy.checkHealth();
      },
      stop: unwind,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** Starts one node and resolves once it listens (its banner names its root URL). */
async function startNode(
  name: string,
  dataDir: string,
  env: Record<string, string>,
  onOutput: ClusterOptions['onNodeOutput'],
): Promise<ClusterNode> {
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [...NODE_FLAGS, '--enable-source-maps', REFERENCE_INDEX_MAIN], {
    env: { ...process.env, PEP694_HOST: '127.0.0.1', PEP694_PORT: '0', PEP694_DATA: dataDir, PEP694_NODE_ID: name, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: Ctrl+C in the terminal reaches the script, which stops the nodes in order.
    detached: true,
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let printed = '';
  const lines = (chunk: Buffer, carry: { rest: string }) => {
    const text = carry.rest + chunk.toString();
    const parts = text.split('\n');
    carry.rest = parts.pop()!;
    for (const line of parts) onOutput?.(name, line);
  };
  const out = { rest: '' };
  const err = { rest: '' };
  // Its start banner is not passed on (the cluster prints its own); what it prints after is.
  let listening = false;
  child.stderr.on('data', (d: Buffer) => {
    printed += d.toString();
    lines(d, err);
  });
  const origin = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (listening) return lines(d, out);
      printed += d.toString();
      const m = /Upload 2\.0 root:\s+(http:\/\/[^/\s]+)\//.exec(printed);
      if (m) {
        listening = true;
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`${name} exited (${String(code)}) before it listened:\n${printed.slice(-2000)}`)));
  });
  return { name, origin, child, exited };
}

/** SIGTERM, then SIGKILL after 10 s. */
async function stopNode(node: ClusterNode): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill('SIGTERM');
  const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
  await node.exited;
  clearTimeout(timer);
}
