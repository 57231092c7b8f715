// PostgreSQL for the control-postgres section of the bench: a throwaway cluster from
// @pep694/store-postgres/testing (Debian's PostgreSQL, initdb in a temp dir, a free port on
// 127.0.0.1), made durable like a production server before anything is measured: the testing
// cluster runs with fsync, synchronous_commit and full_page_writes off (its data is thrown away),
// and SQLite next to it answers only after an fsync (its group commit), so they are turned back on (ALTER SYSTEM,
// then a reload: all three take effect without a restart). Prints "PGENV <base64url JSON>" (the
// URL, the postmaster's pid, the settings in force) once it runs; SIGTERM stops the cluster and
// deletes it.
import pg from 'pg';
import { startTestCluster } from '@pep694/store-postgres/testing';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const cluster = await startTestCluster();
const pool = new pg.Pool({ connectionString: cluster.url, max: 1 });
const durable = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' };
let settings;
try {
  for (const [name, value] of Object.entries(durable)) await pool.query(`ALTER SYSTEM SET ${name} = ${value}`);
  await pool.query('SELECT pg_reload_conf()');
  // The reload is asynchronous: wait until the postmaster's children see it.
  for (let i = 0; i < 100; i++) {
    const { rows } = await pool.query(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'server_version')",
    );
    settings = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    if (Object.entries(durable).every(([k, v]) => settings[k] === v)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
} finally {
  await pool.end();
}
const postmasterPid = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
const info = { url: cluster.url, postmasterPid, settings };
console.log(`PGENV ${Buffer.from(JSON.stringify(info)).toString('base64url')}`);
// Nothing else keeps the event loop alive: wait for SIGTERM, or for stdin to close (the bench
// holds it open: when the bench dies, even by SIGKILL, the cluster goes too).
const alive = setInterval(() => {}, 1 << 30);
const stop = () => {
  clearInterval(alive);
  cluster.stop().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.stdin.on('end', stop).resume();
