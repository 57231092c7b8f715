/**
 * The `pep694` command (commander): `upload`, and `session status|publish|cancel|extend|list`.
 * Every action returns an exit code (exit-codes.ts); errors are printed by `run` as the server's
 * problem `detail` and `errors[]`, never as a stack trace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { MechanismClient } from '@pep694/core/node-http';
import { SessionApi, type PublishingSession } from '../api.js';
import { ApiError, errorLines, NotUpload2, TestInstallFailed, UsageError } from '../errors.js';
import { FIRST_PARTY_HALVES, loadHalf } from '../halves.js';
import { publishFlow, authorizations, type FlowResult, type Protocol } from '../publish-flow.js';
import { DEFAULT_PARALLEL } from '../upload.js';
import { cancelSession, extendSession, publishSession, resolveSession, sessionStatus } from '../sessions.js';
import { defaultCacheDir, StateStore, type SessionRecord } from '../state.js';
import { HttpAnswerError } from '@pep694/core/node-http';
import { resolveRepository } from './credentials.js';
import { EXIT } from './exit-codes.js';
import { BarRenderer, formatBytes, LineRenderer, QuietRenderer, type Renderer } from './render.js';

export interface Io {
  readonly stdout: NodeJS.WriteStream | NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl+C. */
  readonly signal: AbortSignal;
  readonly isTTY: boolean;
}

const USER_AGENT = 'pep694-client/0.1.0';

/** A repeatable option's values (`--half a --half b`), not a variadic one that would swallow the dists after it. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('a positive whole number is expected');
  return n;
}

/** `{ "halves": ["@acme/mechanism-stream", "./local-half.js"] }` in `--config FILE` or `./pep694.json`: third parties' client halves. */
async function loadConfiguredHalves(configFile: string | undefined, extra: readonly string[]): Promise<MechanismClient[]> {
  const halves: MechanismClient[] = [...FIRST_PARTY_HALVES];
  const file = configFile ?? (existsSync('pep694.json') ? 'pep694.json' : undefined);
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read the config ${file}: ${(err as Error).message}`);
    }
    const list = (parsed as { halves?: unknown }).halves;
    if (list !== undefined && (!Array.isArray(list) || !list.every((h) => typeof h === 'string'))) {
      throw new UsageError(`${file}: "halves" must be a list of package names or paths`);
    }
    for (const spec of list ?? []) halves.push(await loadHalf(spec, dirname(resolve(file))));
  }
  for (const spec of extra) halves.push(await loadHalf(spec, process.cwd()));
  return halves;
}

function exitCodeOf(err: unknown, signal: AbortSignal): number {
  if (signal.aborted) return EXIT.interrupted;
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof TestInstallFailed) return EXIT.testFailed;
  if (err instanceof ApiError || err instanceof HttpAnswerError || err instanceof NotUpload2) return EXIT.refused;
  const code = (err as { cause?: { code?: unknown }; code?: unknown })?.cause?.code ?? (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|UND_ERR_.*)$/.test(code))
    return EXIT.network;
  return EXIT.failure;
}

function sessionLines(session: PublishingSession, record: SessionRecord | undefined): string[] {
  const lines = [
    `session:    ${session.links.session}${record ? ` (local id ${record.id})` : ''}`,
    ...(record ? [`release:    ${record.name} ${record.version}`] : []),
    `status:     ${session.status}`,
    `expires-at: ${session['expires-at']}`,
    ...(session.links.stage ? [`stage:      ${session.links.stage}`] : []),
    `mechanisms: ${session.mechanisms.join(', ')}`,
  ];
  const files = Object.entries(session.files);
  lines.push(`files:      ${files.length === 0 ? '(none)' : ''}`);
  for (const [name, f] of files) {
    lines.push(`  ${f.status.padEnd(10)} ${name}`);
    for (const n of f.notices ?? []) lines.push(`             notice: ${n}`);
  }
  for (const n of session.notices ?? []) lines.push(`notice: ${n}`);
  return lines;
}

function uploadSummary(results: readonly FlowResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const published = r.files.filter((f) => f.status === 'already-published').length;
    const there = published > 0 ? `, ${published} already published` : '';
    if (r.protocol === 'legacy') {
      lines.push(
        `Uploaded ${r.name} ${r.version} through the legacy API (${r.files.length - published} file(s)${there}; each is published as it arrives).`,
      );
      continue;
    }
    const sent = r.files.reduce((a, f) => a + f.bytesSent, 0);
    const counts = `${r.files.length - published} file(s), ${formatBytes(sent)} sent${there}`;
    if (r.status === 'unchanged') {
      lines.push(`Nothing to upload for ${r.name} ${r.version}: every file is already published; the session was canceled.`);
    } else if (r.status === 'staged') {
      lines.push(`Staged ${r.name} ${r.version} (${counts}); not published.`);
      if (r.stageUrl) {
        lines.push(`  stage:   ${r.stageUrl}`);
        lines.push(`  try:     pip install --index-url ${r.stageUrl} ${r.name}==${r.version}`);
      } else lines.push('  (this index has no stage previews)');
      lines.push(`  session: ${r.localId ?? r.sessionUrl}`);
      lines.push(`  publish: pep694 session publish ${r.localId ?? r.sessionUrl}`);
      lines.push(`  cancel:  pep694 session cancel ${r.localId ?? r.sessionUrl}`);
    } else {
      lines.push(
        `${r.status === 'published' ? 'Published' : 'Publishing (the index is still processing)'} ${r.name} ${r.version} (${counts}).`,
      );
      lines.push(`  session: ${r.sessionUrl}`);
    }
  }
  return lines;
}

export function buildProgram(io: Io, setCode: (code: number) => void): Command {
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const program = new Command()
    .name('pep694')
    .description('Upload Python distributions with the Upload 2.0 API (PEP 694): stage, test, publish.')
    .version('0.1.0')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  const withRepository = (c: Command) =>
    c
      .option('--repository-url <url>', 'the Upload 2.0 root (or legacy endpoint) of the index')
      .option('-r, --repository <name>', 'a repository section of ~/.pypirc (PEP694_PYPIRC)')
      .option('--token <token>', 'the API token (else PEP694_TOKEN, else the ~/.pypirc password)')
      .option('--cache-dir <dir>', 'local state (PEP694_CACHE_DIR; default ~/.cache/pep694)')
      .option('--json', 'print one JSON result on stdout, nothing else');

  withRepository(
    program
      .command('upload')
      .description('upload distributions: create (or join) a session, upload every file, then publish (or stop at the stage)')
      .argument('<dist...>', 'wheels and sdists (their *.attestation files next to them are sent too)')
      .option('--stage', 'upload but do not publish: print the stage URL and a session id')
      .option(
        '--test-install',
        'install the release from the stage into a temporary venv and run --test-command; publish only if it passes',
      )
      .option('--test-command <cmd>', 'the test run by --test-install (default: import the top-level modules)')
      .option('--test-extra-index-url <url>', 'another index for the dependencies during --test-install (repeatable)', collect)
      .option('--mechanism <id>', 'the file upload mechanism to use instead of the index’s preference')
      .option('--skip-existing', 'skip files the index already publishes with the same sha256 (re-running a release job)')
      .addOption(new Option('--parallel <n>', 'files uploaded at once').argParser(positiveInt).default(DEFAULT_PARALLEL))
      .addOption(
        new Option('--protocol <p>', 'Upload 2.0, the legacy API, or 2.0 falling back to legacy on 404/406')
          .choices(['2', 'legacy', 'auto'])
          .default('auto'),
      )
      .option('--config <file>', 'a JSON config naming third-party client halves: {"halves": ["package"]} (default ./pep694.json)')
      .option('--half <package>', 'load a third-party client half (package name or path; repeatable)', collect),
  ).action(async (dists: string[], o: Record<string, unknown>) => {
    const repo = resolveRepository(
      {
        ...(o['repositoryUrl'] ? { url: o['repositoryUrl'] as string } : {}),
        ...(o['repository'] ? { repository: o['repository'] as string } : {}),
        ...(o['token'] ? { token: o['token'] as string } : {}),
      },
      io.env,
    );
    const halves = await loadConfiguredHalves(o['config'] as string | undefined, (o['half'] as string[] | undefined) ?? []);
    const state = new StateStore((o['cacheDir'] as string | undefined) ?? defaultCacheDir(io.env));
    const json = o['json'] === true;
    const renderer: Renderer = json ? new QuietRenderer() : io.isTTY ? await BarRenderer.create() : new LineRenderer(io.stdout);
    const stage = o['stage'] === true;
    const onSigint = () =>
      renderer.log(
        stage ? 'Interrupted: the session stays staged; re-run the same command to go on.' : 'Interrupted: canceling the session…',
      );
    io.signal.addEventListener('abort', onSigint, { once: true });
    try {
      const results = await publishFlow({
        url: repo.url,
        credentials: repo.credentials,
        dists,
        protocol: o['protocol'] as Protocol,
        stage,
        testInstall: o['testInstall'] === true,
        ...(o['testCommand'] ? { testCommand: o['testCommand'] as string } : {}),
        ...(o['testExtraIndexUrl'] ? { testExtraIndexUrls: o['testExtraIndexUrl'] as string[] } : {}),
        ...(o['mechanism'] ? { mechanism: o['mechanism'] as string } : {}),
        parallel: o['parallel'] as number,
        skipExisting: o['skipExisting'] === true,
        halves,
        state,
        signal: io.signal,
        userAgent: USER_AGENT,
        onEvent: (e) => renderer.event(e),
      });
      renderer.stop();
      if (json) out(JSON.stringify({ ok: true, releases: results }, null, 2));
      else for (const l of uploadSummary(results)) out(l);
    } finally {
      renderer.stop();
      io.signal.removeEventListener('abort', onSigint);
    }
  });

  const session = program
    .command('session')
    .description('look at, publish, cancel or extend a session (SESSION: a local id or the session URL)');

  const sessionAction =
    (
      act: (
        api: SessionApi,
        spec: string,
        state: StateStore,
        o: Record<string, unknown>,
      ) => Promise<{ session: PublishingSession | undefined; record: SessionRecord | undefined }>,
      verb: string,
    ) =>
    async (spec: string, o: Record<string, unknown>) => {
      const state = new StateStore((o['cacheDir'] as string | undefined) ?? defaultCacheDir(io.env));
      const { record } = resolveSession(spec, state);
      const repo = resolveRepository(
        {
          ...(o['repositoryUrl'] ? { url: o['repositoryUrl'] as string } : {}),
          ...(o['repository'] ? { repository: o['repository'] as string } : {}),
          ...(o['token'] ? { token: o['token'] as string } : {}),
          fallbackUrl: record?.root ?? spec,
        },
        io.env,
      );
      const api = new SessionApi({
        authorization: authorizations(repo.credentials).upload2,
        userAgent: USER_AGENT,
        signal: io.signal,
        onRetry: (what, seconds, attempt) => io.stderr.write(`notice: ${what}; trying again in ${seconds} s (try ${attempt})\n`),
      });
      const { session: s, record: r } = await act(api, spec, state, o);
      if (o['json'] === true) out(JSON.stringify({ ok: true, localId: r?.id, session: s ?? null }, null, 2));
      else {
        if (verb) out(verb);
        if (s) for (const l of sessionLines(s, r)) out(l);
      }
    };

  withRepository(session.command('status').description('show a session’s status, files and stage URL').argument('<session>')).action(
    sessionAction((api, spec, state) => sessionStatus(api, spec, state), ''),
  );
  withRepository(session.command('publish').description('publish a staged session').argument('<session>')).action(
    sessionAction((api, spec, state) => publishSession(api, spec, state), 'Published.'),
  );
  withRepository(session.command('cancel').description('cancel a session and discard its files').argument('<session>')).action(
    sessionAction((api, spec, state) => cancelSession(api, spec, state), 'Canceled.'),
  );
  withRepository(
    session
      .command('extend')
      .description('ask the index to keep a session longer')
      .argument('<session>')
      .addOption(new Option('--seconds <n>', 'seconds to ask for').argParser(positiveInt).default(3600)),
  ).action(sessionAction((api, spec, state, o) => extendSession(api, spec, o['seconds'] as number, state), 'Extended.'));

  session
    .command('list')
    .description('the sessions this machine started or joined (local state; `session status` asks the index)')
    .option('--cache-dir <dir>', 'local state (PEP694_CACHE_DIR; default ~/.cache/pep694)')
    .option('--json', 'print JSON')
    .action((o: Record<string, unknown>) => {
      const records = new StateStore((o['cacheDir'] as string | undefined) ?? defaultCacheDir(io.env)).list();
      if (o['json'] === true) {
        out(
          JSON.stringify(
            records.map(({ files, ...r }) => ({ ...r, files: Object.keys(files) })),
            null,
            2,
          ),
        );
        return;
      }
      if (records.length === 0) out('No sessions.');
      for (const r of records)
        out(`${r.id}  ${r.status.padEnd(10)} ${`${r.name} ${r.version}`.padEnd(30)} ${r.createdAt}  ${r.sessionUrl}`);
    });

  program.hook('postAction', () => setCode(EXIT.ok));
  return program;
}

/** Runs the command line; resolves with the exit code. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const exit = exitCodeOf(err, io.signal);
    if (argv.includes('--json')) {
      // CI reads stdout: one JSON document there too when the run fails.
      const problem = err instanceof ApiError || err instanceof HttpAnswerError ? err.problem : undefined;
      io.stdout.write(
        `${JSON.stringify({ ok: false, exitCode: exit, error: errorLines(err).join('\n'), ...(problem ? { problem } : {}) }, null, 2)}\n`,
      );
    }
    if (exit === EXIT.interrupted) {
      io.stderr.write('pep694: interrupted\n');
      return exit;
    }
    const lines = errorLines(err);
    io.stderr.write(`pep694: ${lines.join('\n')}\n`);
    if (err instanceof TestInstallFailed) {
      if (err.output.trim()) io.stderr.write(`${err.output.trim().split('\n').slice(-20).join('\n')}\n`);
      io.stderr.write('The release was left staged, not published.\n');
    } else if (exit === EXIT.network) io.stderr.write('Re-run the same command to go on where it stopped.\n');
    return exit;
  }
}
