/**
 * What the client reads inside a distribution: its core metadata (a wheel's
 * `*.dist-info/METADATA`, an sdist's `PKG-INFO`) for the legacy upload form, and a wheel's
 * top-level modules for the default `--test-install` command. yauzl (zip) and tar-stream read the
 * archives without unpacking them.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';

/** Core metadata as header name (lowercased) → values, and the body (the description). */
export interface CoreMetadata {
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
}

const MAX_METADATA = 4 * 1024 * 1024;

/** Parses the RFC 822 style of core metadata: `Name: value` lines, continuation lines, then the body. */
export function parseCoreMetadata(text: string): CoreMetadata {
  const headers = new Map<string, string[]>();
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let i = 0;
  let last: { key: string; index: number } | undefined;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      i++;
      break;
    }
    if (/^[ \t]/.test(line) && last) {
      const values = headers.get(last.key)!;
      values[last.index] = `${values[last.index]}\n${line.replace(/^ {0,8}|^\t/, '')}`;
      continue;
    }
    const m = /^([^:]+):\s?(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.trim().toLowerCase();
    const values = headers.get(key) ?? [];
    values.push(m[2]!);
    headers.set(key, values);
    last = { key, index: values.length - 1 };
  }
  return { headers, body: lines.slice(i).join('\n') };
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => (err ? reject(err) : resolve(zip))),
  );
}

/** Every entry name of a wheel, and the text of the entry `want` picks (its METADATA). */
async function readWheel(path: string, want: (name: string) => boolean): Promise<{ names: string[]; text: string | undefined }> {
  const zip = await openZip(path);
  const names: string[] = [];
  let text: string | undefined;
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      names.push(entry.fileName);
      if (text === undefined && want(entry.fileName) && entry.uncompressedSize <= MAX_METADATA) {
        zip.openReadStream(entry, (err, stream) => {
          if (err) return reject(err);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            text = Buffer.concat(chunks).toString('utf8');
            zip.readEntry();
          });
        });
      } else zip.readEntry();
    });
    zip.readEntry();
  });
  return { names, text };
}

const isMetadata = (name: string) => /^[^/]+\.dist-info\/METADATA$/.test(name);

/** The wheel's METADATA. */
export async function wheelMetadata(path: string): Promise<CoreMetadata> {
  const { text } = await readWheel(path, isMetadata);
  if (text === undefined) throw new Error(`${path} has no *.dist-info/METADATA`);
  return parseCoreMetadata(text);
}

/**
 * The modules a wheel installs at the top level (`import` names): its top-level packages
 * (directories holding Python files) and modules (`*.py`, extension modules), without
 * `*.dist-info`, `*.data` and private names.
 */
export async function wheelTopLevel(path: string): Promise<string[]> {
  const { names } = await readWheel(path, () => false);
  const found = new Set<string>();
  for (const n of names) {
    const [first, ...rest] = n.split('/');
    if (!first || first.endsWith('.dist-info') || first.endsWith('.data')) continue;
    const mod =
      rest.length > 0
        ? rest.some((r) => /\.(py|so|pyd)$/.test(r))
          ? first
          : undefined
        : /^([^.]+)\.(?:py|.*\.so|so|pyd)$/.exec(first)?.[1];
    if (mod && /^[A-Za-z][A-Za-z0-9_]*$/.test(mod)) found.add(mod);
  }
  return [...found].sort();
}

/** The sdist's `{name}-{version}/PKG-INFO`. */
export async function sdistMetadata(path: string): Promise<CoreMetadata> {
  const extract = tar.extract();
  let text: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      if (text === undefined && /^[^/]+\/PKG-INFO$/.test(name) && (header.size ?? 0) <= MAX_METADATA) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          text = Buffer.concat(chunks).toString('utf8');
          next();
        });
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    extract.on('finish', () => resolve());
    extract.on('error', reject);
  });
  const source = createReadStream(path);
  const gunzip = createGunzip();
  source.on('error', (err) => extract.destroy(err));
  gunzip.on('error', (err) => extract.destroy(err));
  source.pipe(gunzip).pipe(extract);
  await done;
  if (text === undefined) throw new Error(`${path} has no PKG-INFO`);
  return parseCoreMetadata(text);
}
