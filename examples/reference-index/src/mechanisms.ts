/**
 * Which mechanisms the reference index serves, in order of preference. By default every
 * first-party mechanism that has landed; `PEP694_CONFIG` names a JSON file to choose instead:
 *
 *   { "mechanisms": [ { "plugin": "@pep694/mechanism-http-post-bytes", "options": {} } ] }
 *
 * `plugin` names a module whose default export is a MechanismPlugin, in one of four forms:
 * - a package name (`@acme/mechanism-stream`), resolved from the config file's directory, the way
 *   tools resolve plugins named in their config (install it beside the config file); the
 *   first-party `@pep694/mechanism-*` packages are also found from the reference index itself;
 * - a relative path (`./plugins/stream/dist/index.js`), from the config file's directory;
 * - an absolute path (`/opt/pep694/stream/dist/index.js`);
 * - a `file://` URL.
 *
 * With an S3 blob store (`PEP694_BLOBS=s3://…`), `vnd-pep694-s3multipart-presigned` is served too
 * (last, after the mechanisms that work on any store): clients PUT the file's parts straight into
 * the bucket. Its plugin takes that store as its `store` option, which a JSON config cannot spell:
 * a config entry of `@pep694/mechanism-s3-presigned` gets it filled in.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { resolve as resolveImport } from 'import-meta-resolve';
import { z } from 'zod';
import type { MechanismPlugin } from '@pep694/core';
import type { MechanismRegistration } from '@pep694/server';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart from '@pep694/mechanism-multipart';
import tus, { PLUGIN_NAME as TUS_PLUGIN, type TusOptionsInput } from '@pep694/mechanism-tus';
import resumable, { type ResumableOptionsInput } from '@pep694/mechanism-resumable';
import s3presigned, { PLUGIN_NAME as S3_PRESIGNED } from '@pep694/mechanism-s3-presigned';
import type { S3BlobStore } from '@pep694/blobs-s3';
import { PostgresAdvisoryLocks } from '@pep694/store-postgres';

/**
 * The resumable mechanism's options: its uploads in progress in `PEP694_RESUMABLE_DIR` (default
 * `<dataDir>/resumable`). With `PEP694_DATABASE_URL` (several nodes may serve one index) the
 * directory is taken as shared by the nodes (give them all the same one: a shared filesystem
 * such as NFS or EFS across machines) and appends are kept apart by PostgreSQL advisory locks, so
 * any node serves any request of an upload.
 */
export function resumableOptions(dataDir: string, env: NodeJS.ProcessEnv = process.env): ResumableOptionsInput {
  const directory = env.PEP694_RESUMABLE_DIR ? resolve(env.PEP694_RESUMABLE_DIR) : join(dataDir, 'resumable');
  const url = env.PEP694_DATABASE_URL;
  if (!url) return { operator: 'pep694', directory };
  return { operator: 'pep694', directory, shared: true, lock: new PostgresAdvisoryLocks({ connectionString: url }) };
}

/** Backends the nodes of a cluster share, which some mechanisms use when they are there. */
export interface SharedBackends {
  /** tus uploads in the bucket and their lock in PostgreSQL (tus-shared.ts). */
  readonly tus?: Pick<TusOptionsInput, 's3' | 'locker'> | undefined;
  /** The S3 blob store: vnd-pep694-s3multipart-presigned writes straight into it. */
  readonly s3?: S3BlobStore | undefined;
}

/**
 * `dataDir` holds the tus and resumable uploads in progress (`<dataDir>/tus`, `<dataDir>/resumable`,
 * beside the blob store); default `PEP694_DATA` or `./data`, as main.ts. `shared.tus` (see
 * tus-shared.ts): tus uploads in a bucket with a lock in PostgreSQL, for several nodes. `shared.s3`:
 * the S3 blob store, when the index keeps its files in S3 (adds vnd-pep694-s3multipart-presigned).
 */
export function defaultMechanisms(
  dataDir = resolve(process.env.PEP694_DATA ?? 'data'),
  shared: SharedBackends = {},
): MechanismRegistration[] {
  const { tus: sharedTus, s3 } = shared;
  return [
    { plugin: httpPostBytes, options: {} },
    // vnd-pep694-multipart: HTML forms, FormData and curl -F.
    { plugin: multipart, options: { operator: 'pep694' } },
    // vnd-pep694-tus: resumable uploads (tus 1.0) for large files.
    // With shared storage (several nodes), the uploads in the bucket and the lock in PostgreSQL.
    { plugin: tus, options: { operator: 'pep694', ...(sharedTus ?? { directory: join(dataDir, 'tus') }) } },
    // vnd-pep694-resumable-i6 and -i8: the IETF "Resumable Uploads for HTTP" draft (interop
    // versions 6 and 8), a future standard, after the stable mechanisms.
    { plugin: resumable, options: resumableOptions(dataDir) },
    // vnd-pep694-s3multipart-presigned: with S3 blobs, the bytes go from the client to the bucket.
    ...(s3 ? [{ plugin: s3presigned, options: { operator: 'pep694', store: s3 } }] : []),
  ];
}

const ConfigSchema = z.object({
  mechanisms: z.array(z.object({ plugin: z.string().min(1), options: z.unknown().optional() })).min(1),
});

/**
 * The URL to import for a config entry's `plugin`, resolved against the config file (see the forms
 * above). Node's own `import()` would resolve names and relative paths from this module's folder
 * and the working directory, where a plugin installed beside the config is not found.
 */
export function pluginUrl(plugin: string, configFile: string): string {
  if (plugin.startsWith('file:')) return new URL(plugin).href;
  if (isAbsolute(plugin)) return pathToFileURL(plugin).href;
  const base = dirname(resolve(configFile));
  if (/^\.\.?([/\\]|$)/.test(plugin)) return pathToFileURL(resolve(base, plugin)).href;
  // ESM resolution (the `import` condition of `exports`), as if imported by a module beside the
  // config; then from the reference index itself, which ships the first-party mechanisms.
  try {
    return resolveImport(plugin, pathToFileURL(join(base, 'pep694.config.js')).href);
  } catch (err) {
    try {
      return resolveImport(plugin, import.meta.url);
    } catch {
      throw new Error(`${configFile}: cannot find the plugin package "${plugin}" from ${base} (install it there, or give a path)`, {
        cause: err,
      });
    }
  }
}

/**
 * The mechanisms `configPath` names (default: `defaultMechanisms`). `shared.tus` goes into the
 * options of a tus entry that names neither `directory` nor `s3` (a JSON file cannot carry a locker);
 * `shared.s3` becomes the `store` of an s3-presigned entry that names none.
 */
export async function loadMechanisms(configPath: string | undefined, shared: SharedBackends = {}): Promise<MechanismRegistration[]> {
  if (!configPath) return defaultMechanisms(undefined, shared);
  const { tus: sharedTus, s3 } = shared;
  const parsed = ConfigSchema.safeParse(JSON.parse(readFileSync(configPath, 'utf8')));
  if (!parsed.success) throw new Error(`${configPath}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const registrations: MechanismRegistration[] = [];
  for (const entry of parsed.data.mechanisms) {
    const mod = (await import(pluginUrl(entry.plugin, configPath))) as { default?: MechanismPlugin<unknown> };
    if (!mod.default || typeof mod.default.register !== 'function')
      throw new Error(`${entry.plugin} has no default-exported mechanism plugin`);
    let options = entry.options as Record<string, unknown> | undefined;
    if (sharedTus && mod.default.name === TUS_PLUGIN && options?.['directory'] === undefined && options?.['s3'] === undefined) {
      options = { ...sharedTus, ...options };
    }
    if (mod.default.name === S3_PRESIGNED && s3 && typeof options === 'object' && options !== null && !('store' in options)) {
      options = { ...options, store: s3 };
    }
    registrations.push({ plugin: mod.default, options });
  }
  return registrations;
}
