/** Test helpers: artifacts from buffers, and archives built in memory (yazl, tar-stream + zlib). */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import yazl from 'yazl';
import type { ArtifactUnderValidation } from '@pep694/core';

export interface CountingArtifact extends ArtifactUnderValidation {
  /** Bytes handed out by `read` so far. */
  readonly bytesRead: () => number;
}

export function artifact(bytes: Buffer, filename: string, project = 'demo-pkg', version = '1.0.0'): CountingArtifact {
  let served = 0;
  return {
    project,
    version,
    filename,
    size: bytes.length,
    bytesRead: () => served,
    async read(range) {
      if (range && (range.start < 0 || range.end < range.start || range.end >= bytes.length)) {
        throw new RangeError(`bad range ${range.start}-${range.end} of ${bytes.length}`);
      }
      const slice = range ? bytes.subarray(range.start, range.end + 1) : bytes;
      // Hand the bytes out in 64 KiB chunks, as a file stream would, and count what is consumed.
      async function* chunks() {
        for (let i = 0; i < slice.length; i += 65536) {
          const c = slice.subarray(i, i + 65536);
          served += c.length;
          yield c;
        }
      }
      return Readable.from(chunks());
    },
  };
}

export interface ZipMember {
  readonly name: string;
  readonly data: Buffer | string;
  readonly compress?: boolean;
}

export function buildZip(members: readonly ZipMember[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const m of members) zip.addBuffer(Buffer.from(m.data), m.name, { compress: m.compress ?? true, mtime: new Date(1580601600000) });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

export interface TarMember {
  readonly name: string;
  readonly data?: Buffer | string;
  readonly type?: 'file' | 'directory' | 'symlink';
  readonly linkname?: string;
}

export async function buildTarGz(members: readonly TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  pack.on('data', (c: unknown) => out.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const m of members) {
    const type = m.type ?? 'file';
    if (type === 'file') pack.entry({ name: m.name, type }, Buffer.from(m.data ?? ''));
    else pack.entry({ name: m.name, type, ...(m.linkname ? { linkname: m.linkname } : {}) });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(out));
}

export const metadata = (name: string, version: string, extra = 'Requires-Python: >=3.7\n') =>
  `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n${extra}\nDescription body\n`;

export const WHEEL_FILE = 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n';
