/**
 * A minimal but valid sdist (`{name}-{version}.tar.gz` with `{name}-{version}/PKG-INFO`), made
 * in memory with tar-stream, so the checker can upload to servers that validate artifacts.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { wheelEscapeName } from '@pep694/core';

export interface Artifact {
  readonly filename: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

export async function makeSdist(name: string, version: string): Promise<Artifact> {
  const base = `${wheelEscapeName(name)}-${version}`;
  const pkgInfo = `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\nSummary: PEP 694 conformance check upload\n`;
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => chunks.push(c as Buffer));
  const finished = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  const mtime = new Date(1_580_601_600_000);
  tar.entry({ name: `${base}/PKG-INFO`, mtime, mode: 0o644 }, pkgInfo);
  tar.entry({ name: `${base}/pyproject.toml`, mtime, mode: 0o644 }, '[project]\nname = "x"\n');
  tar.finalize();
  await finished;
  const bytes = gzipSync(Buffer.concat(chunks));
  return { filename: `${base}.tar.gz`, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
