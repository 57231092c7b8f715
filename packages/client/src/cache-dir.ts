/** Where the `pep694` command keeps local state and its code cache. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$PEP694_CACHE_DIR`, else `$XDG_CACHE_HOME/pep694`, else `~/.cache/pep694`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['PEP694_CACHE_DIR']) return env['PEP694_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'pep694');
}
