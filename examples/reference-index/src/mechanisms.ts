/**
 * Which mechanisms the reference index serves, in order of preference. By default every
 * first-party mechanism that has landed; `PEP694_CONFIG` names a JSON file to choose instead:
 *
 *   { "mechanisms": [ { "plugin": "@pep694/mechanism-http-post-bytes", "options": {} } ] }
 *
 * `plugin` is a package name (or path) whose default export is a MechanismPlugin.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { MechanismPlugin } from '@pep694/core';
import type { MechanismRegistration } from '@pep694/server';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart from '@pep694/mechanism-multipart';
import tus from '@pep694/mechanism-tus';

/** `dataDir` holds the tus uploads in progress (`<dataDir>/tus`, beside the blob store); default `PEP694_DATA` or `./data`, as main.ts. */
export function defaultMechanisms(dataDir = resolve(process.env.PEP694_DATA ?? 'data')): MechanismRegistration[] {
  return [
    { plugin: httpPostBytes, options: {} },
    // vnd-pep694-multipart: HTML forms, FormData and curl -F.
    { plugin: multipart, options: { operator: 'pep694' } },
    // vnd-pep694-tus: resumable uploads (tus 1.0) for large files.
    { plugin: tus, options: { operator: 'pep694', directory: join(dataDir, 'tus') } },
  ];
}

const ConfigSchema = z.object({
  mechanisms: z.array(z.object({ plugin: z.string().min(1), options: z.unknown().optional() })).min(1),
});

export async function loadMechanisms(configPath: string | undefined): Promise<MechanismRegistration[]> {
  if (!configPath) return defaultMechanisms();
  const parsed = ConfigSchema.safeParse(JSON.parse(readFileSync(configPath, 'utf8')));
  if (!parsed.success) throw new Error(`${configPath}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const registrations: MechanismRegistration[] = [];
  for (const entry of parsed.data.mechanisms) {
    const specifier = entry.plugin.startsWith('.') ? pathToFileURL(resolve(entry.plugin)).href : entry.plugin;
    const mod = (await import(specifier)) as { default?: MechanismPlugin<unknown> };
    if (!mod.default || typeof mod.default.register !== 'function')
      throw new Error(`${entry.plugin} has no default-exported mechanism plugin`);
    registrations.push({ plugin: mod.default, options: entry.options });
  }
  return registrations;
}
