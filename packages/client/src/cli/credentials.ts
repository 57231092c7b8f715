/**
 * Where the repository and credentials come from, as twine users have them: `--repository-url`
 * or `--repository NAME` (a section of `~/.pypirc`: `repository`, `username`, `password`), and the
 * token from `--token`, else `PEP694_TOKEN`, else the section's password. Nothing here is printed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ini from 'ini';
import { UsageError } from '../errors.js';
import type { Credentials } from '../publish-flow.js';

export interface PypircSection {
  readonly name: string;
  readonly repository?: string;
  readonly username?: string;
  readonly password?: string;
}

/** `PEP694_PYPIRC`, else `~/.pypirc`. */
export const pypircPath = (env: NodeJS.ProcessEnv = process.env) => env['PEP694_PYPIRC'] ?? join(homedir(), '.pypirc');

export function readPypirc(path: string): PypircSection[] {
  if (!existsSync(path)) return [];
  const parsed = ini.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const sections: PypircSection[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === 'distutils' || typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const str = (k: string) => (typeof v[k] === 'string' && v[k] !== '' ? v[k] : undefined);
    sections.push({
      name,
      ...(str('repository') ? { repository: str('repository')! } : {}),
      ...(str('username') ? { username: str('username')! } : {}),
      ...(str('password') ? { password: str('password')! } : {}),
    });
  }
  return sections;
}

const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

export interface Resolved {
  readonly url: string;
  readonly credentials: Credentials;
  /** Where the credentials came from (said in messages; never the secret itself). */
  readonly source: string;
}

/** The repository URL and credentials for a command. `url` or `repository` may be absent when `fallbackUrl` (a session's root) is known. */
export function resolveRepository(
  opts: { url?: string; repository?: string; token?: string; fallbackUrl?: string },
  env: NodeJS.ProcessEnv = process.env,
): Resolved {
  if (opts.url && opts.repository) throw new UsageError('give --repository-url or --repository, not both');
  const sections = readPypirc(pypircPath(env));
  let section: PypircSection | undefined;
  let url = opts.url ?? env['PEP694_REPOSITORY_URL'];
  if (opts.repository) {
    section = sections.find((s) => s.name === opts.repository);
    if (!section) throw new UsageError(`no [${opts.repository}] section in ${pypircPath(env)}`);
    if (!section.repository) throw new UsageError(`the [${opts.repository}] section of ${pypircPath(env)} has no repository URL`);
    url = section.repository;
  }
  url ??= opts.fallbackUrl;
  if (!url) throw new UsageError('give the index: --repository-url URL, --repository NAME (from ~/.pypirc), or PEP694_REPOSITORY_URL');
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`not an http(s) URL: ${url}`);
  }
  section ??= sections.find((s) => s.repository !== undefined && sameUrl(s.repository, url));
  const token = opts.token ?? env['PEP694_TOKEN'];
  if (token) return { url, credentials: { token }, source: opts.token ? '--token' : 'PEP694_TOKEN' };
  if (section?.password !== undefined) {
    return {
      url,
      credentials: { username: section.username ?? '__token__', password: section.password },
      source: `the [${section.name}] section of ${pypircPath(env)}`,
    };
  }
  return { url, credentials: {}, source: 'none' };
}
