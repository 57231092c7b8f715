/**
 * The default auth: API tokens from a JSON file, sent as `Authorization: Bearer <token>` or as
 * Basic with user `__token__` (what twine sends). One object serves as Authenticator, Authorizer
 * and NameRegistrationPolicy: a token's `projects` globs say where its principal may upload and
 * which new names it may register.
 *
 * The file is re-read when it changes, so revoking or granting takes effect on the next request
 * (PEP 694 "Authentication and Authorization": permission is checked contemporaneously).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Authenticator, Authorizer, NameRegistrationPolicy, Principal } from '@pep694/core';

export const TokensFileSchema = z.object({
  tokens: z.array(
    z.object({
      token: z.string().min(16, 'tokens must have at least 16 characters'),
      principal: z.string().min(1),
      /** Globs over normalized project names: `*` any run of characters, `?` one character. */
      projects: z.array(z.string().min(1)).default([]),
    }),
  ),
});
export type TokensFile = z.infer<typeof TokensFileSchema>;

interface Entry {
  readonly principal: Principal;
  readonly patterns: readonly RegExp[];
}

/** Timestamps are trusted only for files older than this (FAT's 2 s granularity, with margin). */
const RACY_MS = 3_000;

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

/** `bob-*` → /^bob-.*$/; every other character is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Extracts the token from Bearer or Basic (`__token__:<token>`) credentials. */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'bearer') return m[2];
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || decoded.slice(0, colon) !== '__token__') return undefined;
  return decoded.slice(colon + 1);
}

export class TokensFileAuth implements Authenticator, Authorizer, NameRegistrationPolicy {
  /** Basic first and on its own line: browsers offer only the first challenge of a line. */
  readonly challenge = ['Basic realm="pep694 upload"', 'Bearer realm="pep694 upload"'] as const;
  private entries = new Map<string, Entry>();
  /** mtime, ctime, size and inode of the loaded file: any changing means the file was rewritten. */
  private loadedStamp = '';
  /**
   * The loaded file was modified less than RACY_MS before it was read: a rewrite of the same size
   * within the file system's timestamp granularity (coarse kernel clocks, 2 s on FAT) would keep
   * the stamp, so the file is re-read on every check until it is older ("racy git" rule).
   */
  private racy = false;

  /** `path` is re-read whenever it changes; `tokens` is a fixed in-memory list instead. */
  constructor(private readonly source: { path: string } | { tokens: TokensFile['tokens'] }) {
    if ('tokens' in source) this.index(TokensFileSchema.parse({ tokens: source.tokens }));
    else this.reload();
  }

  /**
   * Reads the tokens file named by `PEP694_TOKENS_FILE`, or else a development token kept in
   * `<dataDir>/dev-token` (created on first start, with access to every project).
   */
  static fromEnvironment(
    dataDir: string,
    env: NodeJS.ProcessEnv = process.env,
  ): { auth: TokensFileAuth; devToken?: { token: string; file: string; created: boolean } } {
    const file = env.PEP694_TOKENS_FILE;
    if (file) return { auth: new TokensFileAuth({ path: file }) };
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, 'dev-token');
    let created = false;
    if (!existsSync(path)) {
      // A fixed prefix (as PyPI's `pypi-`): a bare base64url token starts with '-' one time in 64,
      // and `twine upload -p <token>` then reads it as an option.
      writeFileSync(path, `pep694-dev-${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      created = true;
    }
    const devToken = readFileSync(path, 'utf8').trim();
    return {
      auth: new TokensFileAuth({ tokens: [{ token: devToken, principal: 'dev', projects: ['*'] }] }),
      devToken: { token: devToken, file: path, created },
    };
  }

  private index(file: TokensFile): void {
    const entries = new Map<string, Entry>();
    for (const t of file.tokens) {
      entries.set(digest(t.token), { principal: { id: t.principal }, patterns: t.projects.map(globToRegExp) });
    }
    this.entries = entries;
  }

  private reload(): void {
    if (!('path' in this.source)) return;
    let stamp: string;
    let racyNow: boolean;
    try {
      const st = statSync(this.source.path);
      // ctime too: a rewrite that restores the mtime (`cp -p`, `rsync -t`, `touch -r`) changes it.
      stamp = `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`;
      racyNow = Date.now() - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS;
    } catch (err) {
      // Fail closed: once running, a vanished file revokes every token (replace it atomically).
      if (this.loadedStamp) {
        this.entries = new Map();
        this.loadedStamp = 'missing';
        return;
      }
      throw new Error(`cannot read the tokens file ${this.source.path}: ${(err as Error).message}`, { cause: err });
    }
    if (stamp === this.loadedStamp && !this.racy) return;
    let parsed: TokensFile;
    try {
      parsed = TokensFileSchema.parse(JSON.parse(readFileSync(this.source.path, 'utf8')));
    } catch (err) {
      // Fail closed: a broken edit must not keep a token alive that the edit meant to revoke.
      if (this.loadedStamp) {
        this.entries = new Map();
        this.loadedStamp = stamp;
        this.racy = racyNow;
        return;
      }
      throw new Error(`the tokens file ${this.source.path} is invalid: ${(err as Error).message}`, { cause: err });
    }
    this.index(parsed);
    this.loadedStamp = stamp;
    this.racy = racyNow;
  }

  async authenticate(authorization: string | undefined): Promise<Principal | null> {
    const token = tokenFromAuthorization(authorization);
    if (!token) return null;
    this.reload();
    // Looked up by sha256 of the token: the map lookup cannot leak the token's bytes by timing.
    return this.entries.get(digest(token))?.principal ?? null;
  }

  async mayUpload(principal: Principal, project: string): Promise<boolean> {
    // A principal may hold several tokens; any of them granting the project is enough.
    this.reload();
    for (const e of this.entries.values()) {
      if (e.principal.id === principal.id && e.patterns.some((p) => p.test(project))) return true;
    }
    return false;
  }

  async mayRegister(principal: Principal, project: string): Promise<boolean> {
    return this.mayUpload(principal, project);
  }
}
