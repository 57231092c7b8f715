/**
 * `--test-install` (PEP 694 "Suggested Command-Line Interfaces", `uv publish --test-install`):
 * after every file is `completed`, install the release from the stage URL into a fresh virtual
 * environment and run a test command in it; the caller publishes only when it passes. The
 * environment is made without pip (`venv --without-pip`, fast) and the system's pip installs
 * into it (`pip --python`), `--isolated` so that no user pip configuration points it elsewhere.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Release } from './dists.js';
import { TestInstallFailed } from './errors.js';

export interface TestInstallOptions {
  /** The stage's simple index (`links.stage`). */
  readonly stageUrl: string;
  readonly release: Release;
  /** A shell command run in the environment (its `bin` first on PATH); default: import the top-level modules. */
  readonly command?: string;
  /** More indexes for the release's dependencies (`--extra-index-url`). */
  readonly extraIndexUrls?: readonly string[];
  /** The Python to make the environment with (default `PEP694_PYTHON`, else `/usr/bin/python3` where it exists, else `python3` on PATH). */
  readonly python?: string;
  readonly signal?: AbortSignal;
  /** Each line the steps print. */
  readonly onOutput?: (line: string) => void;
}

interface Run {
  readonly code: number | null;
  readonly output: string;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; shell?: boolean; signal?: AbortSignal; onOutput?: (line: string) => void },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      shell: opts.shell ?? false,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let output = '';
    let partial = '';
    const take = (d: Buffer) => {
      const s = d.toString();
      output += s;
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.onOutput?.(l);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      if (partial) opts.onOutput?.(partial);
      resolve({ code, output });
    });
  });
}

/** The default test: `python -c "import a; import b"` for the wheels' top-level modules (else the project name as a module). */
export async function defaultTestCommand(release: Release): Promise<string> {
  // Loaded here: the archive readers are needed by --test-install only, not at every start.
  const { wheelTopLevel } = await import('./dist-metadata.js');
  const modules = new Set<string>();
  for (const d of release.dists) if (d.kind === 'wheel') for (const m of await wheelTopLevel(d.path)) modules.add(m);
  if (modules.size === 0) modules.add(release.name.replace(/-/g, '_'));
  return `python -c "${[...modules].map((m) => `import ${m}`).join('; ')}"`;
}

/** Installs the release from the stage and runs the test; rejects with TestInstallFailed (and the output) when a step fails. */
export async function testInstall(opts: TestInstallOptions): Promise<{ command: string; output: string }> {
  const python = opts.python ?? process.env['PEP694_PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const dir = await mkdtemp(join(tmpdir(), 'pep694-test-install-'));
  const venv = join(dir, 'venv');
  const bin = join(venv, process.platform === 'win32' ? 'Scripts' : 'bin');
  const venvPython = join(bin, process.platform === 'win32' ? 'python.exe' : 'python');
  const common = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onOutput ? { onOutput: opts.onOutput } : {}) };
  let output = '';
  try {
    const made = await run(python, ['-m', 'venv', '--without-pip', venv], common);
    output += made.output;
    if (made.code !== 0) throw new TestInstallFailed(`making a virtual environment with ${python} failed`, output);
    const requirement = `${opts.release.name}==${opts.release.version}`;
    const pip = await run(
      python,
      [
        '-m',
        'pip',
        '--isolated',
        '--disable-pip-version-check',
        '--python',
        venvPython,
        'install',
        '--no-cache-dir',
        '--index-url',
        opts.stageUrl,
        ...(opts.extraIndexUrls ?? []).flatMap((u) => ['--extra-index-url', u]),
        requirement,
      ],
      common,
    );
    output += pip.output;
    if (pip.code !== 0) throw new TestInstallFailed(`pip could not install ${requirement} from the stage`, output);
    const command = opts.command ?? (await defaultTestCommand(opts.release));
    const env: NodeJS.ProcessEnv = { ...process.env, VIRTUAL_ENV: venv, PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}` };
    delete env['PYTHONHOME'];
    const test = await run(command, [], { ...common, env, shell: true });
    output += test.output;
    if (test.code !== 0) throw new TestInstallFailed(`the test command failed (exit ${test.code}): ${command}`, output);
    return { command, output };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
