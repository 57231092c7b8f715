/**
 * Local state in a cache directory, so that a run that was killed can be re-run with the same
 * arguments and go on: which server session each release went to, and for each file its file
 * upload session, digest and the half's resume state. One JSON file per local session, written
 * whole and renamed into place (a kill never leaves half a file). The local id (`a1b2c3d4`) is
 * what `pep694 session … SESSION` accepts besides the session URL (PEP 694 "Suggested
 * Command-Line Interfaces": "This session identifier is local to the client").
 *
 * A file's state changes while the release uploads (each file upload session is recorded before
 * its first byte) go to a journal beside the record, `<id>.log`: one JSON line per change,
 * appended with one synchronous write to a descriptor kept open. Reads replay it over the record;
 * once the files are done the record is written whole and the journal removed (`compact`). Why:
 * writing the record whole for each file (a temporary file, its write, its close and the rename,
 * four thread-pool round trips) cost a release of 21 files about 20 ms of the command's CPU on the
 * bench machine (after its first request, 134 ms against 111 with the journal, medians of 24
 * runs), on the two cores the index's server needed; an appended line costs a few microseconds.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Per record id: the open descriptor of its journal (see the module comment). */
  private readonly journals = new Map<string, number>();

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'sessions');
  }

  private path(id: string): string {
    if (!/^[0-9a-f]{8}$/.test(id)) throw new Error(`not a local session id: ${id}`);
    return join(this.dir, `${id}.json`);
  }

  private journalPath(id: string): string {
    return this.path(id).replace(/\.json$/, '.log');
  }

  /** A record as written, with the file changes of its journal applied in order. */
  private read(name: string): SessionRecord {
    const record = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as SessionRecord;
    let journal: string;
    try {
      journal = readFileSync(this.journalPath(record.id), 'utf8');
    } catch {
      return record; // none: every change is in the record
    }
    for (const line of journal.split('\n')) {
      let change: { file?: unknown; state?: unknown };
      try {
        change = JSON.parse(line) as typeof change;
      } catch {
        continue; // the empty end, or a line a kill cut short (only ever the last)
      }
      if (typeof change.file !== 'string') continue;
      if (change.state === null) delete record.files[change.file];
      else if (typeof change.state === 'object') record.files[change.file] = change.state as FileState;
    }
    return record;
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
        records.push(this.read(n));
      } catch {
        // a record that cannot be read is skipped, not fatal: it is only a cache
      }
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): SessionRecord | undefined {
    try {
      return this.read(`${id}.json`);
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

  /**
   * Sets one file's state in `record` (undefined: removes it) and records the change on disk
   * before it returns: one line appended to the record's journal. Throws when it cannot be
   * written (the caller then sends nothing).
   */
  recordFile(record: SessionRecord, filename: string, state: FileState | undefined): void {
    if (state) record.files[filename] = state;
    else delete record.files[filename];
    let fd = this.journals.get(record.id);
    if (fd === undefined) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fd = openSync(this.journalPath(record.id), 'a', 0o600);
      this.journals.set(record.id, fd);
      // A run killed in the middle of a line left it without its end: the lines of this run start
      // on a line of their own (an empty line is nothing to a read).
      writeFileSync(fd, '\n');
    }
    // writeFileSync on a descriptor writes until every byte is out (writeSync may stop short).
    writeFileSync(fd, `${JSON.stringify({ file: filename, state: state ?? null })}\n`);
  }

  /** Writes `record` whole, which holds every change of its journal, then removes the journal. */
  async compact(record: SessionRecord): Promise<void> {
    await this.saveAsync(record);
    this.closeJournal(record.id);
    rmSync(this.journalPath(record.id), { force: true });
  }

  /** Lets go of the journal's descriptor (the journal stays for the next read to replay). */
  closeJournal(id: string): void {
    const fd = this.journals.get(id);
    if (fd === undefined) return;
    this.journals.delete(id);
    closeSync(fd);
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
   * place. Saves of one record while a write of it runs are coalesced into one write after it.
   * Do not mix with `save` for a record until these have resolved (both use the same temporary
   * file).
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
    this.closeJournal(id);
    rmSync(this.path(id), { force: true });
    rmSync(this.journalPath(id), { force: true });
  }
}
