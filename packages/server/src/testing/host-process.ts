/**
 * The host in a process of its own, so that its peak RSS (VmHWM) is the server's alone: for tests
 * that a mechanism streams a large file rather than buffering it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The one token of the process's tokens, allowed every project. */
export const HOST_PROCESS_TOKEN = 'large-file-token-0123456789';

export interface HostProcess {
  /** Absolute URL of the Upload 2.0 root endpoint. */
  readonly url: string;
  /** `Authorization` header value of `HOST_PROCESS_TOKEN`. */
  readonly authorization: string;
  /** The process's peak resident set size so far, in MB (Linux: VmHWM). */
  peakRssMb(): number;
  /** Kills the process and removes its data directory. */
  close(): void;
}

/**
 * Starts the host in a child process with one mechanism: the default export of the module at
 * `plugin` (a file URL, e.g. `new URL('../dist/index.js', import.meta.url)`), with `options`.
 * Everything the child imports is resolved here, from this package, so it runs from anywhere.
 */
export async function startHostProcess(opts: { plugin: URL; options?: unknown }): Promise<HostProcess> {
  const require = createRequire(import.meta.url);
  const resolved = (specifier: string) => JSON.stringify(pathToFileURL(require.resolve(specifier)).href);
  const dir = mkdtempSync(join(tmpdir(), 'pep694-host-process-'));
  const script = join(dir, 'server.mjs');
  writeFileSync(
    script,
    `
import ${resolved('reflect-metadata')};
import { pino } from ${resolved('pino')};
import { createServer, TokensFileAuth } from ${JSON.stringify(new URL('../index.js', import.meta.url).href)};
import plugin from ${JSON.stringify(opts.plugin.href)};
const auth = new TokensFileAuth({ tokens: [{ token: ${JSON.stringify(HOST_PROCESS_TOKEN)}, principal: 't', projects: ['*'] }] });
const server = await createServer({
  config: { dataDir: process.argv[2], reaperInterval: 0 },
  auth: { authenticator: auth, authorizer: auth, names: auth },
  mechanisms: [{ plugin, options: ${JSON.stringify(opts.options ?? {})} }],
  logger: pino({ level: 'warn' }),
});
const { url } = await server.listen(0, '127.0.0.1');
console.log('ROOT ' + url);
`,
  );
  const child = spawn(process.execPath, [script, join(dir, 'data')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const close = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        const m = /ROOT (\S+)/.exec(text);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
    return {
      url,
      authorization: `Bearer ${HOST_PROCESS_TOKEN}`,
      peakRssMb: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024,
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}

export interface RandomFile {
  readonly path: string;
  readonly sha256: string;
  /** Removes the file and its temp directory. */
  remove(): void;
}

/** Writes `size` random bytes, in 4 MiB blocks, to `name` in a new temp directory. */
export async function writeRandomFile(name: string, size: number): Promise<RandomFile> {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-random-file-'));
  const path = join(dir, name);
  const hash = createHash('sha256');
  const block = Buffer.alloc(4 * 1024 ** 2);
  const out = createWriteStream(path);
  for (let done = 0; done < size; done += block.length) {
    const chunk = block.subarray(0, Math.min(block.length, size - done));
    randomFillSync(chunk);
    hash.update(chunk);
    // A block is larger than the stream's buffer, so write() returns false and the wait for
    // 'drain' keeps the block from being refilled while it is still queued.
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise((r) => out.end(r));
  return { path, sha256: hash.digest('hex'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
