/**
 * Trusted publishers from a JSON file beside the tokens file, re-read when it changes (like the
 * tokens file: mtime, ctime, size and inode, and re-read while the file is younger than the
 * timestamp granularity), so that adding or removing a publisher takes effect on the next upload.
 *
 * Fail closed: a file that vanishes or stops parsing once loaded leaves no project with a trusted
 * publisher (every attestation is then rejected) rather than keeping one the edit meant to remove.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  indexByProject,
  normalizeProject,
  TrustedPublishersFileSchema,
  type TrustedPublisher,
  type TrustedPublisherSource,
} from './trusted-publishers.js';

/** Timestamps are trusted only for files older than this (FAT's 2 s granularity, with margin). */
const RACY_MS = 3_000;

export class TrustedPublishersFile implements TrustedPublisherSource {
  private byProject = new Map<string, readonly TrustedPublisher[]>();
  private loadedStamp = '';
  private racy = false;
  /** The last load's failure, for an operator's log. */
  lastError: string | undefined;

  /** Reads `path` now: a missing or invalid file at start is an error (the operator named it). */
  constructor(readonly path: string) {
    this.reload();
  }

  publishersOf(project: string): readonly TrustedPublisher[] {
    this.reload();
    return this.byProject.get(normalizeProject(project)) ?? [];
  }

  private reload(): void {
    let stamp: string;
    let racyNow: boolean;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`;
      racyNow = Date.now() - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS;
    } catch (err) {
      if (this.loadedStamp) {
        this.byProject = new Map();
        this.loadedStamp = 'missing';
        this.lastError = `cannot read ${this.path}: ${(err as Error).message}`;
        return;
      }
      throw new Error(`cannot read the trusted publishers file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (stamp === this.loadedStamp && !this.racy) return;
    try {
      this.byProject = indexByProject(TrustedPublishersFileSchema.parse(JSON.parse(readFileSync(this.path, 'utf8'))));
      this.lastError = undefined;
    } catch (err) {
      if (!this.loadedStamp)
        throw new Error(`the trusted publishers file ${this.path} is invalid: ${(err as Error).message}`, { cause: err });
      this.byProject = new Map();
      this.lastError = `${this.path} is invalid: ${(err as Error).message}`;
    }
    this.loadedStamp = stamp;
    this.racy = racyNow;
  }
}
