/**
 * Local state in a cache directory, so that a run that was killed can be re-run with the same
 * arguments and go on: which server session each release went to, and for each file its file
 * upload session, digest and the half's resume state. One JSON file per local session, written
 * whole and renamed into place (a kill never leaves half a file). The local id (`a1b2c3d4`) is
 * what `pep694 session … SESSION` accepts besides the session URL (PEP 694 "Suggested
 * Command-Line Interfaces": "This session identifier is local to the client").
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FileState {
  readonly fileSessionUrl: string;
  readonly sha256: string;
  readonly size: number;
  readonly mechanism: string;
  /** What the half saved to resume its transfer (MechanismUploadContext.saveResumeState). */
  readonly resumeState?: unknown;
}

export interface SessionRecord {
  readonly id: string;
  /** The Upload 2.0 root the session was created at. */
  readonly root: string;
  readonly name: string;
  readonly version: string;
  readonly sessionUrl: string;
  readonly stageUrl?: string;
  readonly sessionToken?: string;
  readonly createdAt: string;
  /** Last status this client saw. */
  status: string;
  readonly files: Record<string, FileState>;
}

export { defaultCacheDir } from './cache-dir.js';

interface WriteSlot {
  running: Promise<void>;
  queued: Promise<void> | undefined;
}

export class StateStore {
  private readonly dir: string;
  /** Per record id: the write running, and the one queued after it (which takes every change made meanwhile). */
  private readonly writes = new Map<string, WriteSlot>();
  /** The directory, made once by the first `saveAsync`. */
  private made: Promise<void> | undefined;

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'sessions');
  }

  private path(id: string): string {
    if (!/^[0-9a-f]{8}$/.test(id)) throw new Error(`not a local session id: ${id}`);
    return join(this.dir, `${id}.json`);
  }

  list(): SessionRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const records: SessionRecord[] = [];
    for (const n of names) {
      if (!/^[0-9a-f]{8}\.json$/.test(n)) continue;
      try {
        records.push(JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as SessionRecord);
      } catch {
        // a record that cannot be read is skipped, not fatal: it is only a cache
      }
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): SessionRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.path(id), 'utf8')) as SessionRecord;
    } catch {
      return undefined;
    }
  }

  /** The record of a session URL, or of the last session for this root, name and version. */
  bySessionUrl(url: string): SessionRecord | undefined {
    return this.list().find((r) => r.sessionUrl === url);
  }

  latest(root: string, name: string, version: string): SessionRecord | undefined {
    return this.list()
      .filter((r) => r.root === root && r.name === name && r.version === version)
      .at(-1);
  }

  /**
   * A new record for a session (a new id), or the existing one for its URL. `created`: the server
   * has just created the session, so no record can name it yet (the lookup reads every record).
   */
  open(init: Omit<SessionRecord, 'id' | 'createdAt' | 'files' | 'status'> & { status: string }, created = false): SessionRecord {
    const existing = created ? undefined : this.bySessionUrl(init.sessionUrl);
    if (existing) return existing;
    const record: SessionRecord = { ...init, id: randomBytes(4).toString('hex'), createdAt: new Date().toISOString(), files: {} };
    this.save(record);
    return record;
  }

  save(record: SessionRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const final = this.path(record.id);
    const tmp = `${final}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    renameSync(tmp, final);
  }

  /**
   * `save`, off the event loop: resolves once the record as it is when the write starts is in
   * place. Saves of one record while a write of it runs are coalesced into one write after it (a
   * release of many files saves its record for each of them). Do not mix with `save` for a record
   * until these have resolved (both use the same temporary file).
   */
  saveAsync(record: SessionRecord): Promise<void> {
    const id = record.id;
    const write = async () => {
      this.made ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
        () => undefined,
        (err: unknown) => {
          this.made = undefined;
          throw err;
        },
      );
      await this.made;
      const final = this.path(id);
      const tmp = `${final}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
      await rename(tmp, final);
    };
    const run = (slot: WriteSlot) =>
      write().finally(() => {
        if (slot.queued === undefined) this.writes.delete(id);
      });
    const slot = this.writes.get(id);
    if (!slot) {
      const fresh: WriteSlot = { running: Promise.resolve(), queued: undefined };
      this.writes.set(id, fresh);
      fresh.running = run(fresh);
      return fresh.running;
    }
    // A write is running: one more after it (whatever its outcome) serializes the record as it is then.
    slot.queued ??= slot.running
      .catch(() => undefined)
      .then(() => {
        slot.queued = undefined;
        slot.running = run(slot);
        return slot.running;
      });
    return slot.queued;
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
  }
}
