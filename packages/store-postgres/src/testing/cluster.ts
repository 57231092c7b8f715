/**
 * A throwaway PostgreSQL cluster for tests: `initdb` into a temp directory, `pg_ctl start` on a
 * free port on 127.0.0.1 (and a Unix socket in the same directory, so it never meets the system's
 * cluster), tuned for speed over durability (fsync off: the data is thrown away), stopped and
 * deleted by `stop()`.
 *
 * `initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user (the
 * Debian package creates it) and every server command runs through `runuser -u postgres`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser on the maintenance database. */
  readonly url: string;
  readonly port: number;
  /** The temp directory holding the data directory, the socket and the log. */
  readonly dir: string;
  /** Stops the server (immediate shutdown) and deletes the directory. */
  stop(): Promise<void>;
}

/**
 * The directory of PostgreSQL's server binaries: `PEP694_PG_BIN`, else the newest version under
 * Debian's /usr/lib/postgresql (15 on the project's machines).
 */
export function postgresBinDir(): string {
  if (process.env.PEP694_PG_BIN) return process.env.PEP694_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('no PostgreSQL server binaries: install the Debian package postgresql (see .ci/apt-packages) or set PEP694_PG_BIN');
  }
  return join(root, versions[0]!, 'bin');
}

/** A port free on 127.0.0.1 right now (the server binds it a moment later; a clash is retried). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a server binary, as the `postgres` user when this process is root. */
async function pgCommand(binDir: string, command: string, args: string[], asPostgres: boolean): Promise<void> {
  const file = join(binDir, command);
  if (asPostgres) await run('runuser', ['-u', 'postgres', '--', file, ...args], { cwd: '/' });
  else await run(file, args, { cwd: '/' });
}

/** The uid and gid of the `postgres` user. */
async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startTestCluster(opts: { readonly binDir?: string } = {}): Promise<TestCluster> {
  const binDir = opts.binDir ?? postgresBinDir();
  const asPostgres = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'pep694-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  try {
    if (asPostgres) {
      const { uid, gid } = await postgresIds();
      chownSync(dir, uid, gid);
    }
    await pgCommand(binDir, 'initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], asPostgres);
    // Throwaway data: no fsync, no full-page writes; enough connections for parallel test files.
    appendFileSync(
      join(data, 'postgresql.conf'),
      [
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        'max_connections = 300',
        'shared_buffers = 32MB',
        "log_min_messages = 'warning'",
        '',
      ].join('\n'),
    );
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        await pgCommand(binDir, 'pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', `-p ${port}`], asPostgres);
        return {
          url: `postgres://postgres@127.0.0.1:${port}/postgres`,
          port,
          dir,
          stop: () => stopCluster(binDir, dir, asPostgres),
        };
      } catch (err) {
        if (attempt >= 3) throw err; // e.g. the port was taken between freePort() and the bind
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Stops the cluster in `dir` (if it runs) and deletes the directory. */
export async function stopCluster(binDir: string, dir: string, asPostgres = process.getuid?.() === 0): Promise<void> {
  const data = join(dir, 'data');
  try {
    if (existsSync(join(data, 'postmaster.pid'))) {
      await pgCommand(binDir, 'pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30'], asPostgres);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Records a cluster in `file` (JSON), for other processes of the test run to find. */
export function writeClusterFile(file: string, cluster: TestCluster): void {
  writeFileSync(file, JSON.stringify({ url: cluster.url, port: cluster.port, dir: cluster.dir }));
}
