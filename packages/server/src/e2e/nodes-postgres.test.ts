/**
 * Work that must happen once, with several nodes sharing one PostgreSQL store (issue #17): the
 * deferred verification and the deferred publish a crash interrupted are resumed by exactly one
 * of the nodes starting at once; a dead node's work is taken over once its lease runs out; a
 * reaper pass runs on one node at a time. Real PostgreSQL (a database of its own per test) and a
 * blob directory the nodes share.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { distributionIdentity, type FileValidator, type PublishingSessionRecord } from '@pep694/core';
import { openTestStore, type TestStore } from '@pep694/store-postgres/testing';
import { createServer, type Pep694Server } from '../app.js';
import type { PublishCheck } from '../service/context.js';
import { verificationLease } from '../service/completion.js';
import { REAPER_LEASE } from '../service/reaper.js';
import { publishLease } from '../service/sessions.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';

const BYTES = Buffer.from('not an archive: the test validator only counts its calls');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: TestStore;
let dirs: string[] = [];
let nodes: Pep694Server[] = [];

afterEach(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
  await db?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'pep694-nodes-'));
  dirs.push(d);
  return d;
};

/** Counts calls of the deferred work, each taking a while (so that two nodes would overlap). */
function counters() {
  const calls = { verify: 0, publish: 0 };
  const validator: FileValidator = {
    name: 'counting',
    async validate() {
      calls.verify += 1;
      await sleep(300);
      return { ok: true };
    },
  };
  const check: PublishCheck = async () => {
    calls.publish += 1;
    await sleep(300);
    return { ok: true };
  };
  return { calls, validator, check };
}

/**
 * What a crash leaves behind: a file in processing with its staged bytes, and another session
 * whose deferred publish was under way.
 */
async function interruptedWork(blobs: FsBlobStore): Promise<{ fileId: string; publishing: PublishingSessionRecord }> {
  const { store } = db;
  const now = new Date();
  const later = new Date(now.getTime() + 3_600_000);
  const newSession = (id: string, version: string) => ({
    id,
    project: 'demo',
    displayName: 'demo',
    version,
    releaseKey: version,
    stageToken: null,
    createdBy: 'alice',
    createdAt: now,
    expiresAt: later,
  });
  await store.publish((await created(store.createSession(newSession('s-0', '0')))).id, ['open'], now, { defer: false });
  const verifying = await created(store.createSession(newSession('s-1', '1')));
  const filename = 'demo-1.tar.gz';
  const file = await store.createFile(
    {
      id: 'f-1',
      sessionId: verifying.id,
      filename,
      size: BYTES.length,
      hashes: { sha256: createHash('sha256').update(BYTES).digest('hex') },
      mechanism: 'http-post-bytes',
      identity: distributionIdentity(filename),
      createdAt: now,
      expiresAt: later,
    },
    { maxFiles: 10 },
  );
  if (file.kind !== 'created') throw new Error(`setup: createFile answered ${file.kind}`);
  const staging = await blobs.stage(`staging/${file.file.id}`);
  staging.stream.end(BYTES);
  await new Promise((resolve) => staging.stream.once('finish', resolve));
  await staging.commit();
  expect(await store.updateFile(file.file.id, ['pending'], { status: 'processing' })).toBeDefined();

  const publishing = await created(store.createSession(newSession('s-2', '2')));
  const r = await store.publish(publishing.id, ['open'], now, { defer: true });
  if (r.kind !== 'processing') throw new Error(`setup: publish answered ${r.kind}`);
  return { fileId: file.file.id, publishing: r.session };
}

async function created(p: Promise<Awaited<ReturnType<TestStore['store']['createSession']>>>): Promise<PublishingSessionRecord> {
  const r = await p;
  if (r.kind !== 'created') throw new Error(`setup: createSession answered ${r.kind}`);
  return r.session;
}

/** A node: its own pool on the shared database, the shared blob directory, its own data directory. */
async function startNode(
  blobs: FsBlobStore,
  c: ReturnType<typeof counters>,
  config: { reaperInterval?: number } = {},
): Promise<Pep694Server> {
  const node = await createServer({
    config: { dataDir: tempDir(), reaperInterval: 0, ...config },
    store: await db.connect(),
    blobs,
    validators: [c.validator],
    publishChecks: [c.check],
    logger: pino({ level: process.env.PEP694_TEST_LOG ?? 'silent' }),
  });
  nodes.push(node);
  return node;
}

describe('work that must happen once, across nodes sharing PostgreSQL', () => {
  it('interrupted deferred work is resumed by exactly one of three nodes starting at once', async () => {
    db = await openTestStore();
    const blobs = await FsBlobStore.open(tempDir());
    const { fileId, publishing } = await interruptedWork(blobs);
    const c = counters();
    // createServer starts crash recovery at once: three nodes race for the same two items.
    const started = await Promise.all([startNode(blobs, c), startNode(blobs, c), startNode(blobs, c)]);
    await Promise.all(started.map((n) => n.service.background.idle()));
    expect(c.calls, 'each piece of deferred work ran once').toEqual({ verify: 1, publish: 1 });
    expect((await db.store.getFile(fileId))?.status).toBe('completed');
    expect((await db.store.getSession(publishing.id))?.status).toBe('published');
  });

  it("a dead node's work is taken over once its lease runs out, by the next recovery pass", async () => {
    db = await openTestStore();
    const blobs = await FsBlobStore.open(tempDir());
    const { fileId, publishing } = await interruptedWork(blobs);
    // The node that was doing this work died holding its leases, which run out after 1.5 s.
    expect(await db.store.acquireLease(verificationLease(fileId), 'dead-node', 1500)).toBe(true);
    expect(await db.store.acquireLease(publishLease(publishing.id), 'dead-node', 1500)).toBe(true);
    const c = counters();
    const node = await startNode(blobs, c, { reaperInterval: 200 });
    await sleep(700);
    expect(c.calls, 'nothing runs while the leases are live').toEqual({ verify: 0, publish: 0 });
    expect((await db.store.getFile(fileId))?.status).toBe('processing');
    for (let i = 0; i < 100 && (await db.store.getSession(publishing.id))?.status !== 'published'; i++) await sleep(100);
    for (let i = 0; i < 100 && (await db.store.getFile(fileId))?.status !== 'completed'; i++) await sleep(100);
    await node.service.background.idle();
    expect((await db.store.getFile(fileId))?.status, 'taken over').toBe('completed');
    expect((await db.store.getSession(publishing.id))?.status, 'taken over').toBe('published');
    // Recovery passes kept running every 200 ms: none ran the work again once it was done.
    await sleep(500);
    await node.service.background.idle();
    expect(c.calls, 'once each').toEqual({ verify: 1, publish: 1 });
  });

  it('a reaper pass runs on one node at a time', async () => {
    db = await openTestStore();
    const blobs = await FsBlobStore.open(tempDir());
    const past = new Date(Date.now() - 1000);
    await created(
      db.store.createSession({
        id: 's-expired',
        project: 'gone',
        displayName: 'gone',
        version: '1',
        releaseKey: '1',
        stageToken: null,
        createdBy: 'alice',
        createdAt: past,
        expiresAt: past,
      }),
    );
    const node = await startNode(blobs, counters());
    expect(await db.store.acquireLease(REAPER_LEASE, 'other-node', 60_000)).toBe(true);
    expect(await node.reap(), "another node's pass is under way: this one is skipped").toEqual({ expired: 0, forgotten: 0, orphans: 0 });
    expect((await db.store.getSession('s-expired'))?.status).toBe('open');
    await db.store.releaseLease(REAPER_LEASE, 'other-node');
    expect((await node.reap()).expired, 'then this node reaps').toBe(1);
    expect((await db.store.getSession('s-expired'))?.status).toBe('canceled');
  });
});
