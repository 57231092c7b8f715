/**
 * `pnpm cluster` (dist/main.js) as a person runs it: it prints the proxy's URL and a token that
 * work, and Ctrl+C (SIGINT) stops everything it started: the node processes, the proxy, s3rver
 * and PostgreSQL, and exits 0.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

describe('pnpm cluster', () => {
  it('serves through the proxy, and Ctrl+C stops every process it started', async () => {
    const child = spawn(process.execPath, [MAIN, '--nodes', '2', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (out.includes('Ctrl+C stops everything')) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
      void exited.then(() => (clearInterval(timer), reject(new Error(`exited early: ${out}`))));
    });
    const proxy = /proxy \(round robin\):\s+(\S+)/.exec(out)![1]!;
    const token = /token:\s+(\S+)/.exec(out)![1]!;
    const pids = [...out.matchAll(/\(pid (\d+);/g)].map((m) => Number(m[1]));
    const pgPort = Number(/PostgreSQL:\s+127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const s3Port = Number(/endpoint=http%3A%2F%2F127\.0\.0\.1%3A(\d+)/.exec(out)![1]);
    expect(pids).toHaveLength(2);

    const res = await fetch(`${proxy}/upload/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
      body: JSON.stringify({ meta: { 'api-version': '2.0' }, name: 'cluster-script', version: '1.0' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')!.startsWith(`${proxy}/upload/sessions/`)).toBe(true);
    expect(['node-1', 'node-2']).toContain(res.headers.get('x-pep694-node'));

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('SIGINT: stopping');
    for (const pid of pids) expect(alive(pid), `node pid ${pid}`).toBe(false);
    expect(await accepts(pgPort), 'PostgreSQL stopped').toBe(false);
    expect(await accepts(s3Port), 's3rver stopped').toBe(false);
    expect(await accepts(Number(new URL(proxy).port)), 'proxy stopped').toBe(false);
  }, 90_000);
});
