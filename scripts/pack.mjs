#!/usr/bin/env node
// Packs every publishable workspace package into one folder (`pnpm tarballs`, after a build) and
// checks that each tarball installs as-is outside this repository: private packages are skipped,
// `pnpm pack` rewrites `workspace:` ranges to the versions packed, and this script refuses a
// manifest that still names the workspace, a package without a `files` list, a tarball that lacks a
// file its manifest points at (packed before `pnpm build`), or one that ships tests.
// Usage: node scripts/pack.mjs [--into DIR]   (default ./packs; prints one tarball path a line)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Dependency specs an installer outside this workspace cannot resolve. */
const LOCAL_PROTOCOL = /^(workspace|link|file|portal|catalog):/;

/** The workspace's packages (`pnpm-workspace.yaml`'s `dir/*` globs), each with its manifest. */
export function workspacePackages(root = ROOT) {
  const yaml = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const globs = [...yaml.matchAll(/^\s+-\s+['"]?([^'"\s#]+)\/\*['"]?\s*$/gm)].map((m) => m[1]);
  return globs.flatMap((glob) =>
    readdirSync(join(root, glob), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, glob, d.name, 'package.json')))
      .map((d) => {
        const dir = join(root, glob, d.name);
        return { dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) };
      }),
  );
}

/** Every file path a manifest points at: `main`, `types`, `bin` and the targets of `exports`. */
function manifestTargets(manifest) {
  const out = [];
  const walk = (v) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(manifest.exports);
  walk(manifest.bin);
  walk(manifest.main);
  walk(manifest.types);
  return [...new Set(out)].map((p) => p.replace(/^\.\//, ''));
}

/**
 * Why a packed manifest would not install as-is outside the workspace, given the tarball's file
 * list (paths without the `package/` prefix). Empty when it would.
 */
export function manifestProblems(manifest, entries) {
  const problems = [];
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
    for (const [dep, spec] of Object.entries(manifest[field] ?? {})) {
      if (LOCAL_PROTOCOL.test(String(spec))) problems.push(`${field}.${dep} is "${spec}", which only this workspace can resolve`);
    }
  }
  if (!Array.isArray(manifest.files)) problems.push('no "files" list: everything in the folder would be packed');
  const have = new Set(entries);
  for (const target of manifestTargets(manifest)) {
    if (target.includes('*')) continue; // a subpath pattern, not one file
    if (!have.has(target)) problems.push(`${target} (named by the manifest) is not in the tarball: build before packing`);
  }
  for (const entry of entries) if (/\.test\.[cm]?[jt]s$/.test(entry)) problems.push(`${entry}: a test in the tarball`);
  return problems;
}

/** The manifest and file list inside a tarball. */
export function readTarball(tarball) {
  const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`tar -tzf ${tarball}: ${list.stderr}`);
  const entries = list.stdout
    .split('\n')
    .filter(Boolean)
    .map((e) => e.replace(/^package\//, ''));
  const manifest = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
  if (manifest.status !== 0) throw new Error(`${tarball} has no package/package.json: ${manifest.stderr}`);
  return { manifest: JSON.parse(manifest.stdout), entries };
}

/** The pinned pnpm: the one running this script when there is one, else `npx pnpm@<packageManager>`. */
export function pnpmCommand(root = ROOT) {
  const execpath = process.env.npm_execpath;
  if (execpath && /pnpm/.test(basename(execpath))) return [process.execPath, execpath];
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
  return ['npx', '-y', `pnpm@${version}`];
}

/**
 * Packs the publishable packages into `into` (emptied first) and checks each tarball. Returns one
 * `{ name, version, tarball }` per package; throws naming every problem found.
 */
export function packAll({ root = ROOT, into = join(root, 'packs') } = {}) {
  const publishable = workspacePackages(root).filter((p) => !p.manifest.private);
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into, { recursive: true });
  const [cmd, ...pre] = pnpmCommand(root);
  const filters = publishable.flatMap((p) => ['--filter', `./${p.dir.slice(root.length).replace(/^\/+/, '')}`]);
  const run = spawnSync(cmd, [...pre, '-r', ...filters, 'pack', '--pack-destination', into], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`pnpm pack failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);

  const problems = [];
  const packed = publishable.map(({ manifest }) => {
    const file = `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`;
    const tarball = join(into, file);
    if (!existsSync(tarball)) {
      problems.push(`${manifest.name}: ${file} was not written`);
      return { name: manifest.name, version: manifest.version, tarball };
    }
    const inside = readTarball(tarball);
    for (const p of manifestProblems(inside.manifest, inside.entries)) problems.push(`${manifest.name}: ${p}`);
    return { name: manifest.name, version: manifest.version, tarball };
  });
  const extra = readdirSync(into).filter((f) => !packed.some((p) => basename(p.tarball) === f));
  for (const f of extra) problems.push(`${f}: packed, but not a publishable package`);
  if (problems.length > 0) throw new Error(`the packed tarballs would not install as-is:\n  ${problems.join('\n  ')}`);
  return packed;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--into');
  const into = i > 0 ? resolve(process.argv[i + 1] ?? '') : undefined;
  try {
    for (const p of packAll(into ? { into } : {})) console.log(p.tarball);
  } catch (err) {
    console.error(`pack: ${err.message}`);
    process.exit(1);
  }
}
