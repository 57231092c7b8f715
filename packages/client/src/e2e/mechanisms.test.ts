/**
 * The `pep694` command against the reference index (a child process on loopback), once for every
 * mechanism it has a client half for: `upload --stage` prints a stage URL that real pip installs
 * from (PEP 694 "Staged Previews"), `session publish` publishes, and pip then installs the release
 * from /simple/.
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, HAVE_PIP, pipInstallAndRun, runCli, startIndex, type Index } from '../test-support.js';

let index: Index;
let cache: string;
beforeEach(async () => {
  index = await startIndex();
  cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
});
afterEach(async () => {
  await index.stop();
  rmSync(cache, { recursive: true, force: true });
});

const DISTS = [join(FIXTURES, 'demo_pkg-1.0.0-py3-none-any.whl'), join(FIXTURES, 'demo_pkg-1.0.0.tar.gz')];

describe.skipIf(!HAVE_PIP)('pep694 upload --stage, pip from the stage, session publish, pip from /simple/', () => {
  for (const mechanism of ['http-post-bytes', 'vnd-pep694-multipart', 'vnd-pep694-tus', 'vnd-pep694-resumable-i8']) {
    it(`through ${mechanism}`, { timeout: 120_000 }, async () => {
      const env = { PEP694_CACHE_DIR: cache };
      const staged = await runCli(['upload', '--repository-url', index.url, '--stage', '--mechanism', mechanism, ...DISTS], env);
      expect(staged.stderr).toBe('');
      expect(staged.code).toBe(0);
      expect(staged.stdout).toContain(`demo_pkg-1.0.0-py3-none-any.whl: uploading 1.2 KiB with ${mechanism}`);
      const stage = /^\s+stage:\s+(\S+)$/m.exec(staged.stdout)?.[1];
      const id = /^\s+session:\s+([0-9a-f]{8})$/m.exec(staged.stdout)?.[1];
      expect(stage).toMatch(new RegExp(`^${index.origin}/stage/[^/]+/$`));
      expect(id).toBeDefined();

      // Not published yet: the stage serves it, /simple/ does not.
      expect((await fetch(`${index.origin}/simple/demo-pkg/`)).status).toBe(404);
      expect(pipInstallAndRun(stage!, 'demo-pkg==1.0.0', 'import demo_pkg; print(demo_pkg.hello())')).toBe('hello from demo-pkg 1.0.0');

      const published = await runCli(['session', 'publish', id!], env);
      expect(published.stderr).toBe('');
      expect(published.code).toBe(0);
      expect(published.stdout).toMatch(/^status:\s+published$/m);
      expect(pipInstallAndRun(`${index.origin}/simple/`, 'demo-pkg==1.0.0', 'import demo_pkg; print(demo_pkg.hello())')).toBe(
        'hello from demo-pkg 1.0.0',
      );

      const listed = await runCli(['session', 'list'], env);
      expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+published\\s+demo-pkg 1\\.0\\.0`, 'm'));
    });
  }
});

describe.skipIf(!HAVE_PIP)(
  'the staged workflow of PEP 694 "Suggested Command-Line Interfaces" (GitHub Actions), one job per machine',
  () => {
    it(
      'stages in one job, tests from the stage URL in another, and publishes or cancels by session URL from a third with nothing but the token',
      { timeout: 120_000 },
      async () => {
        // Each job has its own (empty) cache directory: nothing is shared but what the upload job printed.
        const job = () => ({ PEP694_CACHE_DIR: mkdtempSync(join(cache, 'job-')) });
        const staged = await runCli(['upload', '--repository-url', index.url, '--stage', '--json', ...DISTS], job());
        expect(staged.code).toBe(0);
        const { releases } = JSON.parse(staged.stdout) as { releases: { status: string; sessionUrl: string; stageUrl: string }[] };
        expect(releases[0]!.status).toBe('staged');
        const { sessionUrl, stageUrl } = releases[0]!;

        // The test job: pip and the stage URL only.
        expect(pipInstallAndRun(stageUrl, 'demo-pkg==1.0.0', 'import demo_pkg; print(demo_pkg.hello())')).toBe('hello from demo-pkg 1.0.0');

        // The publish job: the session URL and the token.
        const status = await runCli(['session', 'status', sessionUrl], job());
        expect(status.stderr).toBe('');
        expect(status.stdout).toMatch(/^status:\s+open$/m);
        const published = await runCli(['session', 'publish', sessionUrl, '--json'], job());
        expect(published.stderr).toBe('');
        expect(published.code).toBe(0);
        expect((JSON.parse(published.stdout) as { session: { status: string } }).session.status).toBe('published');
        expect(await (await fetch(`${index.origin}/simple/demo-pkg/`)).text()).toContain('demo_pkg-1.0.0-py3-none-any.whl');

        // The cancel-on-failure job, for the next release: the same, with `session cancel`.
        const stagedNext = await runCli(
          ['upload', '--repository-url', index.url, '--stage', '--json', join(FIXTURES, 'demo_pkg-1.0.1.tar.gz')],
          job(),
        );
        expect(stagedNext.stderr).toBe('');
        expect(stagedNext.code).toBe(0);
        const nextUrl = (JSON.parse(stagedNext.stdout) as { releases: { sessionUrl: string }[] }).releases[0]!.sessionUrl;
        const canceled = await runCli(['session', 'cancel', nextUrl], job());
        expect(canceled.stderr).toBe('');
        expect(canceled.code).toBe(0);
        expect((await runCli(['session', 'status', nextUrl], job())).stdout).toMatch(/^status:\s+canceled$/m);
      },
    );
  },
);

describe('pep694 upload (publishing at once)', () => {
  it('uses the first mechanism of the server’s preference, publishes, and prints one JSON result with --json', async () => {
    const r = await runCli(['upload', '--repository-url', index.url, '--json', ...DISTS], { PEP694_CACHE_DIR: cache });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      releases: { status: string; protocol: string; files: { mechanism: string; status: string }[] }[];
    };
    expect(out.ok).toBe(true);
    expect(out.releases).toHaveLength(1);
    expect(out.releases[0]).toMatchObject({ name: 'demo-pkg', version: '1.0.0', status: 'published', protocol: '2' });
    expect(out.releases[0]!.files.map((f) => [f.status, f.mechanism])).toEqual([
      ['completed', 'http-post-bytes'],
      ['completed', 'http-post-bytes'],
    ]);
    expect((await fetch(`${index.origin}/simple/demo-pkg/`)).status).toBe(200);
  });

  it('shows the server’s problem detail and errors[] without a stack trace, and exits 3 (refused)', async () => {
    const env = { PEP694_CACHE_DIR: cache };
    expect((await runCli(['upload', '--repository-url', index.url, ...DISTS], env)).code).toBe(0);
    // The same files again: published files are immutable (PEP 694 "Create a File Upload Session": 409).
    const again = await runCli(['upload', '--repository-url', index.url, DISTS[0]!], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/409 .*already published/);
    expect(again.stderr).toMatch(/^ {2}- \/filename: /m);
    expect(again.stderr).not.toMatch(/\n\s+at /);
    // The session this run created is canceled, not left behind (PEP 694 "Error Handling").
    expect(again.stdout).toMatch(/^Canceled the session /m);
    // With --json, stdout still holds one JSON document, with the server's problem.
    const json = await runCli(['upload', '--repository-url', index.url, '--json', DISTS[0]!], env);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, exitCode: 3, problem: { status: 409 } });
  });

  it('leaves out the GPG signatures (.asc) in dist/*, saying so: twine takes them, Upload 2.0 has no place for them', async () => {
    const dist = mkdtempSync(join(tmpdir(), 'pep694-dist-'));
    try {
      const paths = DISTS.map((d) => join(dist, basename(d)));
      for (const [i, d] of DISTS.entries()) copyFileSync(d, paths[i]!);
      writeFileSync(`${paths[0]!}.asc`, '-----BEGIN PGP SIGNATURE-----\n');
      const r = await runCli(['upload', '--repository-url', index.url, ...readdirSync(dist).map((f) => join(dist, f))], {
        PEP694_CACHE_DIR: cache,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('notice: demo_pkg-1.0.0-py3-none-any.whl.asc: a GPG signature, not sent: Upload 2.0 has no place for one');
      expect(r.stdout).toContain('Published demo-pkg 1.0.0 (2 file(s)');
      // A signature of something that is not a distribution is still a mistake on the command line.
      writeFileSync(join(dist, 'notes.txt.asc'), 'x');
      const bad = await runCli(['upload', '--repository-url', index.url, join(dist, 'notes.txt.asc')], { PEP694_CACHE_DIR: cache });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/notes\.txt\.asc is not a wheel/);
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments with exit 2 before sending anything', async () => {
    const env = { PEP694_CACHE_DIR: cache };
    const notDist = await runCli(['upload', '--repository-url', index.url, join(FIXTURES, '..', 'README.md')], env);
    expect(notDist.code).toBe(2);
    expect(notDist.stderr).toMatch(/is not a wheel/);
    const noUrl = await runCli(['upload', ...DISTS], { ...env, PEP694_REPOSITORY_URL: '' });
    expect(noUrl.code).toBe(2);
    const badMechanism = await runCli(['upload', '--repository-url', index.url, '--mechanism', 'vnd-x-postal', ...DISTS], env);
    expect(badMechanism.code).toBe(2);
    expect(badMechanism.stderr).toMatch(/no client half executes the mechanism vnd-x-postal/);
  });

  it('never prints the token', async () => {
    const r = await runCli(['upload', '--repository-url', index.url, '--stage', ...DISTS], { PEP694_CACHE_DIR: cache });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('client-test-token');
  });
});
