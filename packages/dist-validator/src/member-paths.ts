/**
 * Member paths of wheels and sdists, checked the same way for both. An installer writes each
 * member to `<destination>/<path>`, so a path must be relative and stay inside: no absolute paths,
 * drive letters or `..` (PyPA "Source distribution format", "Unpacking without the data filter":
 * files placed outside the destination are invalid and `..` components may be refused; Python's
 * `tarfile.data_filter` refuses both). We also refuse what makes two readers or two platforms see
 * different paths: backslashes (a separator on Windows only), control characters (`zipfile`
 * truncates a name at NUL), empty and `.` components (`a/./METADATA` is written over
 * `a/METADATA`), and two members that name the same file, exactly or on a case-insensitive file
 * system (Windows, macOS), where the one written last wins.
 */
import { clip } from './release.js';

/** Why `path` cannot be a member path, as a phrase ("is an absolute path"), or undefined. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'is an empty name';
  // eslint-disable-next-line no-control-regex -- finding a control character is the point of this check
  const control = /[\u0000-\u001f\u007f]/.exec(path);
  if (control) return `contains the control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
  if (path.includes('\\')) return 'contains a backslash, which is a path separator on Windows';
  if (path.startsWith('/')) return 'is an absolute path';
  if (/^[A-Za-z]:/.test(path)) return 'starts with a drive letter';
  const parts = (path.endsWith('/') ? path.slice(0, -1) : path).split('/');
  if (parts.includes('..')) return 'has a ".." component, which leads outside the destination directory';
  if (parts.includes('.')) return 'has a "." component';
  if (parts.includes('')) return 'has an empty path component';
  return undefined;
}

/** The key under which two paths name the same file on a case-insensitive, normalizing file system. */
const folded = (path: string) => (/^\p{ASCII}*$/u.test(path) ? path.toLowerCase() : path.normalize('NFC').toUpperCase().toLowerCase());

/** Member paths seen so far, to refuse a second member for the same file. */
export class MemberPathSet {
  private readonly byFolded = new Map<string, { readonly path: string; readonly directory: boolean }>();

  /**
   * Records `path` (a directory when it ends with `/` or `directory` is set) and returns why it
   * clashes with an earlier member, as a phrase, or undefined. Directories listed twice are harmless.
   */
  add(path: string, directory = false): string | undefined {
    const isDir = directory || path.endsWith('/');
    const key = path.endsWith('/') ? path.slice(0, -1) : path;
    const f = folded(key);
    const other = this.byFolded.get(f);
    if (!other) {
      this.byFolded.set(f, { path: key, directory: isDir });
      return undefined;
    }
    if (other.directory && isDir) return undefined;
    if (other.path === key) return "appears twice; readers differ on which copy they use (Python's zipfile and tarfile use the last)";
    return `names the same file as ${JSON.stringify(clip(other.path))} on case-insensitive file systems (Windows, macOS), where one would overwrite the other`;
  }
}
