/**
 * Where an sdist's symlinks lead once extracted. A target is resolved as the file system would,
 * following the archive's other symlinks (all of them, not only the earlier ones: extracting in
 * another order, or a later member, must not change the answer), so that `a/s -> ..` followed by
 * `t -> a/s/../..` is seen to leave the directory although `t`'s target, read as text, stays in it.
 */

export type Resolution = { readonly inside: true } | { readonly inside: false; readonly why: 'outside' | 'loop' };

/** Most symlinks followed while resolving one target (Linux's limit is 40). */
const MAX_HOPS = 40;

/**
 * Resolves the symlink at `linkPath` (archive path, `/`-separated) to `target`, given every
 * symlink of the archive (`links`: archive path to target), and says whether the result stays in
 * `top/` (the sdist's top-level directory).
 */
export function resolveSymlink(linkPath: string, target: string, links: ReadonlyMap<string, string>, top: string): Resolution {
  // Components still to walk, last first (a stack); the resolved path so far.
  const pending = [...target.split('/').reverse(), ...linkPath.split('/').slice(0, -1).reverse()];
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return { inside: false, why: 'outside' };
      resolved.pop();
      continue;
    }
    resolved.push(part);
    const next = links.get(resolved.join('/'));
    if (next === undefined) continue;
    if (++hops > MAX_HOPS) return { inside: false, why: 'loop' };
    resolved.pop();
    if (next.startsWith('/')) return { inside: false, why: 'outside' };
    pending.push(...next.split('/').reverse());
  }
  return resolved[0] === top ? { inside: true } : { inside: false, why: 'outside' };
}
