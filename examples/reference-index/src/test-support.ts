/** Starts the built reference index as a child process, as `pnpm start` runs it (with its node flags). */
import { spawn, type ChildProcess } from 'node:child_process';
import { NODE_FLAGS } from './node-flags.js';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

export async function startReferenceIndex(
  dataDir: string,
  tokensFile: string,
  env: Record<string, string> = {},
  nodeFlags: readonly string[] = NODE_FLAGS,
): Promise<{ child: ChildProcess; url: string; banner: string }> {
  const child = spawn(process.execPath, [...nodeFlags, MAIN], {
    env: { ...process.env, PEP694_PORT: '0', PEP694_DATA: dataDir, PEP694_TOKENS_FILE: tokensFile, PEP694_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // The banner is printed in one write; its root URL line comes first.
      const m = /Upload 2\.0 root:\s+(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the reference index exited with ${code}: ${out}`)));
  });
  return { child, url, banner: out };
}
