/**
 * The two serializations of the Simple Repository API (PyPA "Simple repository API"): PEP 503
 * HTML and PEP 691 JSON, with PEP 700 (`versions`, `size`, `upload-time`) and PEP 658/714 core
 * metadata (`core-metadata`; in HTML both `data-core-metadata` and `data-dist-info-metadata`).
 *
 * URLs are relative to the page (the spec allows it, and pip resolves them), so the same page is
 * right under any origin, proxy prefix, or stage token.
 */
import { HASH_NAMES_PREFERRED } from './hashes.js';
import type { IndexFile, ProjectEntry } from './view.js';

/** We serve API version 1.3: PEP 740's `provenance` (1.3) is the newest feature we emit. */
export const REPOSITORY_VERSION = '1.3';

/** HTML escaping for text and double-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A file's URL relative to its project page: the file name, percent-encoded (`+` in local versions). */
export const fileHref = (filename: string): string => encodeURIComponent(filename);

/**
 * The URL of a file's PEP 740 provenance relative to its project page (`{base}{project}/`): the
 * repository serves it at `{base}integrity/{project}/{version}/{filename}/provenance`, the layout
 * of PyPI's Integrity API, so one relative link is right in the published index and in a stage.
 */
export const provenanceHref = (project: string, f: IndexFile): string =>
  `../integrity/${encodeURIComponent(project)}/${encodeURIComponent(f.version)}/${encodeURIComponent(f.filename)}/provenance`;

/** The strongest digest we have of a file, for the `#<hash>=<hex>` fragment and the ETag. */
export function primaryHash(hashes: IndexFile['hashes']): { name: string; hex: string } | undefined {
  for (const name of HASH_NAMES_PREFERRED) {
    const hex = hashes[name];
    if (hex) return { name, hex };
  }
  return undefined;
}

/** PEP 700 `upload-time`: `yyyy-mm-ddThh:mm:ss.ffffffZ` (fraction optional, up to 6 digits). */
export const uploadTime = (d: Date): string => d.toISOString();

const page = (title: string, body: string): string =>
  `<!DOCTYPE html>\n<html>\n  <head>\n    <meta charset="utf-8">\n    <meta name="pypi:repository-version" content="${REPOSITORY_VERSION}">\n    <title>${escapeHtml(title)}</title>\n  </head>\n  <body>\n    <h1>${escapeHtml(title)}</h1>\n${body}  </body>\n</html>\n`;

export function projectListHtml(projects: readonly ProjectEntry[]): string {
  const links = projects
    .map((p) => `    <a href="${escapeHtml(encodeURIComponent(p.name))}/">${escapeHtml(p.displayName)}</a><br>\n`)
    .join('');
  return page('Simple index', links);
}

export function projectListJson(projects: readonly ProjectEntry[]): object {
  return { meta: { 'api-version': REPOSITORY_VERSION }, projects: projects.map((p) => ({ name: p.displayName })) };
}

export function projectDetailHtml(project: string, files: readonly IndexFile[]): string {
  const links = files
    .map((f) => {
      const h = primaryHash(f.hashes);
      const attrs = [`href="${escapeHtml(fileHref(f.filename) + (h ? `#${h.name}=${h.hex}` : ''))}"`];
      if (f.requiresPython) attrs.push(`data-requires-python="${escapeHtml(f.requiresPython)}"`);
      if (f.coreMetadataSha256) {
        const m = `sha256=${escapeHtml(f.coreMetadataSha256)}`;
        attrs.push(`data-core-metadata="${m}"`, `data-dist-info-metadata="${m}"`);
      }
      // PEP 740 / API 1.3: only on files that have a provenance.
      if (f.hasProvenance) attrs.push(`data-provenance="${escapeHtml(provenanceHref(project, f))}"`);
      return `    <a ${attrs.join(' ')}>${escapeHtml(f.filename)}</a><br>\n`;
    })
    .join('');
  return page(`Links for ${project}`, links);
}

export function projectDetailJson(project: string, files: readonly IndexFile[], versions: readonly string[]): object {
  return {
    meta: { 'api-version': REPOSITORY_VERSION },
    name: project,
    versions: [...versions],
    files: files.map((f) => ({
      filename: f.filename,
      url: fileHref(f.filename),
      hashes: { ...f.hashes },
      ...(f.requiresPython ? { 'requires-python': f.requiresPython } : {}),
      // PEP 714: `core-metadata` only. Debian's pip 23.0.1 crashes on a dict-valued
      // `dist-info-metadata` in JSON (pypa/pip#12042), so the deprecated alias is not sent.
      ...(f.coreMetadataSha256 ? { 'core-metadata': { sha256: f.coreMetadataSha256 } } : {}),
      size: f.size,
      ...(f.uploadTime ? { 'upload-time': uploadTime(f.uploadTime) } : {}),
      // PEP 740 / API 1.3: a URL, or null for a file without attestations.
      provenance: f.hasProvenance ? provenanceHref(project, f) : null,
    })),
  };
}
