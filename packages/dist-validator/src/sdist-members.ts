/**
 * The members of an sdist, checked one tar header at a time (PyPA "Source distribution format":
 * a single top-level `{name}-{version}` directory; "Source distribution archive features": files
 * outside the destination, links pointing outside it and device files are invalid, `..` may be
 * refused; Python's `tarfile.data_filter` refuses the same). Refused:
 *
 * - unsafe paths (member-paths.ts): absolute, `..`, backslashes, control characters;
 * - device files, pipes and tar entry types Python's tarfile reads differently (sparse, unknown);
 * - data in a member that is not a regular file (tar-stream skips it, tarfile reads it as headers);
 * - anything outside the one top-level directory, and a second top-level entry;
 * - two members for one path (two PKG-INFO: this index used to read the first, tarfile the last);
 * - symlinks whose target, resolved through the archive's other symlinks, leaves the top-level
 *   directory; members under a symlink (extracting them writes through the link: `d -> .` and
 *   `d/PKG-INFO` replace PKG-INFO); hard links to anything but an earlier regular file of the
 *   archive (tarfile links to that file on disk, or to whatever is there).
 */
import type { Header } from 'tar-stream';
import { MemberPathSet, pathProblem } from './member-paths.js';
import { clip, stemNamesRelease, type Release } from './release.js';
import { resolveSymlink } from './symlinks.js';

export type MemberVerdict =
  | { readonly ok: true; readonly path: string; readonly pkgInfo: boolean }
  | { readonly ok: false; readonly source: string; readonly message: string };

const REGULAR = new Set(['file', 'contiguous-file']);
const SPECIAL: Record<string, string> = {
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a FIFO (named pipe)',
};

/** The member path: legacy `./` prefixes dropped (`tar -C dir .` writes them). */
export const memberPath = (name: string) => name.replace(/^(?:\.\/)+/, '');

export class SdistMembers {
  /** The top-level directory, from the first member. */
  top: string | undefined;
  private readonly paths = new MemberPathSet();
  private readonly files = new Set<string>();
  private readonly symlinks = new Map<string, string>();
  /** Every member path, to find those under a symlink once all symlinks are known. */
  private readonly all: string[] = [];

  constructor(private readonly release: Release) {}

  add(header: Header): MemberVerdict {
    const path = memberPath(header.name);
    const type: string | null = header.type;
    const shown = JSON.stringify(clip(path || header.name));
    const refuse = (message: string): MemberVerdict => ({ ok: false, source: clip(path || header.name), message });
    if ((path === '' || path === '.') && type === 'directory') return { ok: true, path: '', pkgInfo: false }; // the archive root
    const unsafe = pathProblem(path);
    if (unsafe) return refuse(`the sdist member ${shown} ${unsafe}`);
    if (type === null || !(REGULAR.has(type) || type === 'directory' || type === 'symlink' || type === 'link')) {
      const what =
        type === null ? "of a tar entry type Python's tarfile reads differently (or not at all)" : (SPECIAL[type] ?? `a ${type}`);
      return refuse(
        `the sdist member ${shown} is ${what}; an sdist may hold only files, directories and links (device files and pipes are invalid in sdists)`,
      );
    }
    const size = header.size ?? 0;
    if (!REGULAR.has(type) && size > 0) {
      return refuse(
        `the sdist member ${shown} is a ${type} with ${size} bytes of data; only regular files carry data (tar readers differ on whether to skip it)`,
      );
    }

    const parts = (path.endsWith('/') ? path.slice(0, -1) : path).split('/');
    const top = parts[0]!;
    if (parts.length === 1 && type !== 'directory') {
      return refuse(
        `the sdist member ${shown} is a ${type} at the top level; everything must be inside the single {name}-{version}/ directory`,
      );
    }
    if (this.top === undefined) {
      if (!stemNamesRelease(top, this.release)) {
        return refuse(
          `the sdist's top-level directory is ${JSON.stringify(clip(top))}; for this session it must be {name}-{version} with name ${JSON.stringify(this.release.project)} and version ${JSON.stringify(this.release.version)}`,
        );
      }
      this.top = top;
    } else if (top !== this.top) {
      return refuse(
        `the sdist has more than one top-level entry (${JSON.stringify(clip(this.top))} and ${JSON.stringify(clip(top))}); it must hold a single {name}-{version}/ directory`,
      );
    }

    const key = parts.join('/');
    const pkgInfo = key === `${this.top}/PKG-INFO`;
    if (pkgInfo && !REGULAR.has(type)) return refuse(`${key} is a ${type} entry, not a regular file`);
    const clash = this.paths.add(key, type === 'directory');
    if (clash) return refuse(`the sdist member ${JSON.stringify(clip(key))} ${clash}`);
    this.all.push(key);

    if (type === 'symlink') {
      const target = header.linkname ?? '';
      if (target === '') return refuse(`the sdist member ${shown} is a symlink with no target`);
      if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) {
        return refuse(`the sdist member ${shown} is a symlink to the absolute path ${JSON.stringify(clip(target))}, outside the sdist`);
      }
      // `..` may appear (resolved below); what would make platforms read the target differently may not.
      // eslint-disable-next-line no-control-regex -- finding a control character is the point of this check
      if (/[\u0000-\u001f\u007f\\]/.test(target)) {
        return refuse(
          `the sdist member ${shown} is a symlink whose target ${JSON.stringify(clip(target))} contains a backslash or a control character`,
        );
      }
      this.symlinks.set(key, target);
    } else if (type === 'link') {
      const target = memberPath(header.linkname ?? '');
      const bad = pathProblem(target);
      if (bad) return refuse(`the sdist member ${shown} is a hard link to ${JSON.stringify(clip(target))}, which ${bad}`);
      if (!this.files.has(target)) {
        return refuse(
          `the sdist member ${shown} is a hard link to ${JSON.stringify(clip(target))}, which is not an earlier regular file of the sdist`,
        );
      }
    } else if (REGULAR.has(type)) {
      this.files.add(key);
    }
    return { ok: true, path: key, pkgInfo };
  }

  /**
   * Once every member is known (a symlink may come after the members it affects): no member lies
   * under a symlink, and every symlink resolves inside the top-level directory.
   */
  finish(): { readonly source: string; readonly message: string } | undefined {
    if (this.symlinks.size === 0) return undefined;
    for (const path of this.all) {
      for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
        const link = path.slice(0, i);
        if (!this.symlinks.has(link)) continue;
        return {
          source: clip(path),
          message: `the sdist member ${JSON.stringify(clip(path))} lies under the symlink ${JSON.stringify(clip(link))}; extracting it would write through the link, to ${JSON.stringify(clip(this.symlinks.get(link)!))}`,
        };
      }
    }
    for (const [path, target] of this.symlinks) {
      const r = resolveSymlink(path, target, this.symlinks, this.top!);
      if (r.inside) continue;
      const why = r.why === 'loop' ? 'is part of a symlink loop' : `resolves outside the sdist's ${this.top}/ directory`;
      return {
        source: clip(path),
        message: `the sdist member ${JSON.stringify(clip(path))} is a symlink to ${JSON.stringify(clip(target))}, which ${why}`,
      };
    }
    return undefined;
  }
}
