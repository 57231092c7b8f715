/**
 * Builders for the session suite: new session and file inputs with fixed dates and ids unique
 * within a test, and the few multi-step setups many rules need (a completed file, a registered
 * project). They assert only what they need to go on; the rules assert the rest.
 */
import {
  distributionIdentity,
  releaseKey,
  type FileUploadRecord,
  type NewFileUpload,
  type NewPublishingSession,
  type PublishingSessionRecord,
  type SessionStore,
} from '@pep694/core';

/** A fixed epoch, so dates compare exactly; `at(m)` is m minutes after it. */
export const T0 = Date.UTC(2030, 0, 1);
export const at = (minutes: number): Date => new Date(T0 + minutes * 60_000);

const sha256Of = (n: number) => n.toString(16).padStart(64, '0');

export class Scenario {
  private seq = 0;

  constructor(readonly store: SessionStore) {}

  /** A unique id with a readable prefix. */
  id(prefix: string): string {
    return `${prefix}-${++this.seq}`;
  }

  /** A session for `project` (default `foo`) and `version` (default `1.0`), its release key derived from the version. */
  newSession(over: Partial<NewPublishingSession> = {}): NewPublishingSession {
    const version = over.version ?? '1.0';
    const project = over.project ?? 'foo';
    return {
      id: this.id('s'),
      project,
      displayName: project.charAt(0).toUpperCase() + project.slice(1),
      version,
      releaseKey: releaseKey(version),
      stageToken: null,
      createdBy: 'alice',
      createdAt: at(0),
      expiresAt: at(60),
      ...over,
    };
  }

  /** A file; its `createdAt` grows with each one built, so creation order is build order. */
  newFile(sessionId: string, filename: string, over: Partial<NewFileUpload> = {}): NewFileUpload {
    const n = ++this.seq;
    return {
      id: `f-${n}`,
      sessionId,
      filename,
      size: 10 + n,
      hashes: { sha256: sha256Of(n) },
      mechanism: 'http-post-bytes',
      identity: distributionIdentity(filename),
      createdAt: at(n / 1000),
      expiresAt: at(60),
      ...over,
    };
  }

  async created(over: Partial<NewPublishingSession> = {}, store: SessionStore = this.store): Promise<PublishingSessionRecord> {
    const r = await store.createSession(this.newSession(over));
    if (r.kind !== 'created') throw new Error(`setup: createSession answered '${r.kind}', not 'created'`);
    return r.session;
  }

  async addFile(
    sessionId: string,
    filename: string,
    over: Partial<NewFileUpload> = {},
    store: SessionStore = this.store,
  ): Promise<FileUploadRecord> {
    const r = await store.createFile(this.newFile(sessionId, filename, over), { maxFiles: 100 });
    if (r.kind !== 'created') throw new Error(`setup: createFile of ${filename} answered '${r.kind}', not 'created'`);
    return r.file;
  }

  /** A file moved to completed as the host does after verification: blob key, metadata, Requires-Python. */
  async addCompleted(sessionId: string, filename: string, store: SessionStore = this.store): Promise<FileUploadRecord> {
    const f = await this.addFile(sessionId, filename, {}, store);
    const done = await store.updateFile(f.id, ['pending'], {
      status: 'completed',
      blobKey: `files/${f.id}`,
      coreMetadata: new TextEncoder().encode(`Metadata-Version: 2.1\nName: ${filename}\n`),
      requiresPython: '>=3.9',
    });
    if (!done) throw new Error(`setup: updateFile of pending ${filename} to completed returned undefined`);
    return done;
  }

  /** A registered project (an empty session published), so that several versions can be live at once. */
  async registered(project = 'foo'): Promise<void> {
    const s = await this.created({ project, version: '0.0.0a0' });
    const r = await this.store.publish(s.id, ['open'], at(0), { defer: false });
    if (r.kind !== 'published') throw new Error(`setup: publishing an empty session answered '${r.kind}', not 'published'`);
  }

  /** A session moved to processing by a deferred publish of one completed file. */
  async processing(
    over: Partial<NewPublishingSession>,
    filename: string,
  ): Promise<{ session: PublishingSessionRecord; file: FileUploadRecord }> {
    const session = await this.created(over);
    const file = await this.addCompleted(session.id, filename);
    const r = await this.store.publish(session.id, ['open'], at(1), { defer: true });
    if (r.kind !== 'processing') throw new Error(`setup: a deferred publish answered '${r.kind}', not 'processing'`);
    return { session: r.session, file };
  }
}
