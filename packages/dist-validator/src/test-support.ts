/**
 * Test helpers: artifacts from buffers, archives built in memory (yazl, tar-stream + zlib), and
 * hostile archives (a raw zip writer whose headers can be made to lie, patched tars) with the
 * problem each must get, shared by this package's tests and the server's end-to-end ones.
 */
import { Readable } from 'node:stream';
import { crc32, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import yazl from 'yazl';
import type { ArtifactUnderValidation } from '@pep694/core';

export interface CountingArtifact extends ArtifactUnderValidation {
  /** Bytes handed out by `read` so far. */
  readonly bytesRead: () => number;
  /** Calls of `read` so far (each a stream on the blob store, a request on object storage). */
  readonly reads: () => number;
}

export function artifact(bytes: Buffer, filename: string, project = 'demo-pkg', version = '1.0.0'): CountingArtifact {
  let served = 0;
  let reads = 0;
  return {
    project,
    version,
    filename,
    size: bytes.length,
    bytesRead: () => served,
    reads: () => reads,
    async read(range) {
      reads += 1;
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
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly linkname?: string;
}

export async function buildTarGz(members: readonly TarMember[]): Promise<Buffer> {
  return gzipSync(await buildTar(members));
}

/** The uncompressed tar (ending with its two end-of-archive blocks). */
export async function buildTar(members: readonly TarMember[]): Promise<Buffer> {
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
  return Buffer.concat(out);
}

export const metadata = (name: string, version: string, extra = 'Requires-Python: >=3.7\n') =>
  `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n${extra}\nDescription body\n`;

export const WHEEL_FILE = 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n';

// Hostile archives (issue #21) ------------------------------------------------------------------

const EOCD_SIG = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/** One entry of `rawZip`: stored (not compressed), UTF-8 flagged. The options make it lie. */
export interface RawZipEntry {
  readonly name: string | Buffer;
  readonly data?: string | Buffer;
  readonly flags?: number;
  /** Extra field bytes, in the local header and the central directory record. */
  readonly extra?: Buffer;
  /** Values for the local header instead of the true ones. */
  readonly local?: {
    readonly name?: string | Buffer;
    readonly flags?: number;
    readonly method?: number;
    readonly crc?: number;
    readonly size?: number;
  };
  /** A data descriptor after the data (flag bit 3; zeros in the local header): these bytes, or a correct signed one. */
  readonly descriptor?: true | Buffer;
  /** Written as a local entry only, not listed in the central directory. */
  readonly unlisted?: boolean;
  /** The central directory record points at entry n's local header, or beyond the file. */
  readonly pointsAt?: number | 'outside';
}

export interface RawZipOptions {
  /** Bytes before the first entry; the offsets count them (a self-extractor's layout). */
  readonly leading?: Buffer;
  /** The entry count in the end record, instead of the number of records. */
  readonly count?: number;
  readonly comment?: string;
  /** ZIP64 end records; `locatorDelta` moves the offset the locator gives. */
  readonly zip64?: { readonly locatorDelta?: number };
}

/** A zip written by hand, byte by byte (APPNOTE.TXT 4.3), to make exactly the hostile layouts we test. */
export function rawZip(entries: readonly RawZipEntry[], options: RawZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    pos += b.length;
  };
  if (options.leading) push(options.leading);
  const offsets: number[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const data = Buffer.from(e.data ?? '');
    const flags = (e.flags ?? 0x800) | (e.descriptor ? 0x08 : 0);
    const extra = e.extra ?? Buffer.alloc(0);
    const localName = Buffer.from(e.local?.name ?? name);
    const size = e.descriptor ? 0 : (e.local?.size ?? data.length);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.local?.flags ?? flags, 6);
    h.writeUInt16LE(e.local?.method ?? 0, 8);
    h.writeUInt16LE(0x5021, 12); // 2020-01-01
    h.writeUInt32LE(e.descriptor ? 0 : (e.local?.crc ?? crc32(data)), 14);
    h.writeUInt32LE(size, 18);
    h.writeUInt32LE(size, 22);
    h.writeUInt16LE(localName.length, 26);
    h.writeUInt16LE(extra.length, 28);
    offsets.push(pos);
    push(Buffer.concat([h, localName, extra, data]));
    if (e.descriptor) {
      const d = Buffer.alloc(16);
      d.writeUInt32LE(0x08074b50, 0);
      d.writeUInt32LE(crc32(data), 4);
      d.writeUInt32LE(data.length, 8);
      d.writeUInt32LE(data.length, 12);
      push(e.descriptor === true ? d : e.descriptor);
    }
  }
  const cdOffset = pos;
  let records = 0;
  entries.forEach((e, i) => {
    if (e.unlisted) return;
    const name = Buffer.from(e.name);
    const data = Buffer.from(e.data ?? '');
    const extra = e.extra ?? Buffer.alloc(0);
    const r = Buffer.alloc(46);
    r.writeUInt32LE(0x02014b50, 0);
    r.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0
    r.writeUInt16LE(20, 6);
    r.writeUInt16LE((e.flags ?? 0x800) | (e.descriptor ? 0x08 : 0), 8);
    r.writeUInt16LE(0x5021, 14);
    r.writeUInt32LE(crc32(data), 16);
    r.writeUInt32LE(data.length, 20);
    r.writeUInt32LE(data.length, 24);
    r.writeUInt16LE(name.length, 28);
    r.writeUInt16LE(extra.length, 30);
    r.writeUInt32LE(0o100644 * 0x10000, 38);
    r.writeUInt32LE(e.pointsAt === 'outside' ? 0x10000000 : offsets[e.pointsAt ?? i]!, 42);
    push(Buffer.concat([r, name, extra]));
    records++;
  });
  const cdSize = pos - cdOffset;
  const count = options.count ?? records;
  const comment = Buffer.from(options.comment ?? '');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  if (options.zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeUInt16LE(45, 12);
    record.writeUInt16LE(45, 14);
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(cdSize), 40);
    record.writeBigUInt64LE(BigInt(cdOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(pos + (options.zip64.locatorDelta ?? 0)), 8);
    locator.writeUInt32LE(1, 16);
    push(record);
    push(locator);
    eocd.writeUInt16LE(0xffff, 8);
    eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12);
    eocd.writeUInt32LE(0xffffffff, 16);
  } else {
    eocd.writeUInt16LE(count, 8);
    eocd.writeUInt16LE(count, 10);
    eocd.writeUInt32LE(cdSize, 12);
    eocd.writeUInt32LE(cdOffset, 16);
  }
  eocd.writeUInt16LE(comment.length, 20);
  push(Buffer.concat([eocd, comment]));
  return Buffer.concat(parts);
}

export const DIST_INFO = 'demo_pkg-1.0.0.dist-info';

/** The members of a minimal demo-pkg 1.0.0 wheel, for `rawZip`. */
export const wheelEntries = (init = 'x = 1\n', requires = 'Requires-Python: >=3.7\n'): RawZipEntry[] => [
  { name: 'demo_pkg/__init__.py', data: init },
  { name: `${DIST_INFO}/METADATA`, data: metadata('demo-pkg', '1.0.0', requires) },
  { name: `${DIST_INFO}/WHEEL`, data: WHEEL_FILE },
];

/**
 * One zip's entries and central directory, followed by a second complete zip whose end record
 * points at the first one's central directory (both have the same layout). yauzl follows the
 * offset and reads the first zip ("good", requires goodlib); Python's zipfile places the directory
 * before the end record and reads the second ("evil", requires evillib).
 */
export function concatenatedWheel(): Buffer {
  const good = rawZip(wheelEntries("x = 'good'\n", 'Requires-Python: >=3.7\nRequires-Dist: goodlib\n'));
  const evil = rawZip(wheelEntries("x = 'evil'\n", 'Requires-Python: >=3.7\nRequires-Dist: evillib\n'));
  return Buffer.concat([good.subarray(0, good.lastIndexOf(EOCD_SIG)), evil]);
}

/** Rewrites one 512-byte tar header (found by its name) and fixes its checksum. */
export function patchTarHeader(tarBytes: Buffer, name: string, patch: (header: Buffer) => void): Buffer {
  const out = Buffer.from(tarBytes);
  for (let at = 0; at + 512 <= out.length; at += 512) {
    const header = out.subarray(at, at + 512);
    if (header.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '') !== name) continue;
    patch(header);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    return out;
  }
  throw new Error(`no tar header named ${name}`);
}

/** A tar block of type `x` (pax extended header) with no records, that no member follows. */
function orphanPaxHeader(): Buffer {
  const h = Buffer.alloc(512);
  h.write('demo_pkg-1.0.0/PaxHeader', 0, 'latin1');
  h.write('0000644\0', 100, 'latin1');
  h.write('00000000000\0', 124, 'latin1');
  h.write('x', 156, 'latin1');
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

export interface HostileCase {
  /** What the archive does. */
  readonly name: string;
  readonly filename: string;
  readonly build: () => Promise<Buffer>;
  /** A part of the problem's detail that names the check. */
  readonly message: string;
}

const WHEEL_NAME = 'demo_pkg-1.0.0-py3-none-any.whl';
const SDIST_NAME = 'demo_pkg-1.0.0.tar.gz';
const TOP = 'demo_pkg-1.0.0';
const sdist = (...members: TarMember[]) => buildTarGz([{ name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') }, ...members]);
const wheelCase = (name: string, build: () => Buffer | Promise<Buffer>, message: string): HostileCase => ({
  name,
  filename: WHEEL_NAME,
  build: async () => build(),
  message,
});
const sdistCase = (name: string, build: () => Promise<Buffer>, message: string): HostileCase => ({
  name,
  filename: SDIST_NAME,
  build,
  message,
});
const renamed = (name: string | Buffer, extra: Partial<RawZipEntry> = {}) => rawZip([...wheelEntries(), { name, data: 'x', ...extra }]);

/** Wheels an index must refuse, each with the check that refuses it (demo-pkg 1.0.0). */
export const HOSTILE_WHEELS: readonly HostileCase[] = [
  wheelCase('one zip concatenated with a second one (pip reads the second)', concatenatedWheel, 'one zip concatenated with another'),
  wheelCase(
    'junk prepended, offsets left as they were',
    () => Buffer.concat([Buffer.alloc(100, 0x41), rawZip(wheelEntries())]),
    'data prepended to the zip',
  ),
  wheelCase(
    'junk prepended, offsets moved past it (a self-extractor)',
    () => rawZip(wheelEntries(), { leading: Buffer.alloc(100, 0x41) }),
    'the wheel has 100 bytes before its first entry (leading data)',
  ),
  wheelCase(
    'junk appended after the end record',
    () => Buffer.concat([rawZip(wheelEntries()), Buffer.from('trailing junk')]),
    'the wheel has 13 bytes after its end of central directory record (trailing data)',
  ),
  wheelCase(
    'a local header that names another file than the central directory',
    () => renamed('demo_pkg/a.py', { local: { name: 'demo_pkg/b.py' } }),
    'entry "demo_pkg/a.py" is named "demo_pkg/b.py" in its local header',
  ),
  wheelCase(
    'a local header with another size',
    () => renamed('demo_pkg/a.py', { local: { size: 7 } }),
    'entry "demo_pkg/a.py" has compressed size 7 in its local header and 1 in the central directory',
  ),
  wheelCase(
    'a local header with another CRC-32',
    () => renamed('demo_pkg/a.py', { local: { crc: 1234 } }),
    'entry "demo_pkg/a.py" has CRC-32 1234 in its local header',
  ),
  wheelCase(
    'a local header with other flags',
    () => renamed('demo_pkg/a.py', { local: { flags: 0 } }),
    'entry "demo_pkg/a.py" has flags 0x0 in its local header and 0x800 in the central directory',
  ),
  wheelCase(
    'a local header with another compression method',
    () => renamed('demo_pkg/a.py', { local: { method: 8 } }),
    'entry "demo_pkg/a.py" has compression method 8 in its local header and 0 in the central directory',
  ),
  wheelCase(
    'a data descriptor that disagrees with the central directory',
    () => renamed('demo_pkg/a.py', { descriptor: Buffer.from('504b0708000000000100000001000000', 'hex') }),
    'entry "demo_pkg/a.py" has no data descriptor that matches its central directory record',
  ),
  wheelCase(
    'a second METADATA',
    () => rawZip([...wheelEntries(), { name: `${DIST_INFO}/METADATA`, data: metadata('demo-pkg', '1.0.0', 'Requires-Dist: evillib\n') }]),
    `the wheel entry "${DIST_INFO}/METADATA" appears twice`,
  ),
  wheelCase(
    'a second METADATA in other case',
    () => renamed(`${DIST_INFO}/metadata`),
    `the wheel entry "${DIST_INFO}/metadata" names the same file as "${DIST_INFO}/METADATA" on case-insensitive file systems`,
  ),
  wheelCase(
    'two central directory records for one local header (overlapping entries)',
    () => rawZip([...wheelEntries(), { name: 'demo_pkg/a.py', data: 'x = 1\n', pointsAt: 0 }]),
    'entries overlap',
  ),
  wheelCase(
    'a central directory record that points outside the archive',
    () => renamed('demo_pkg/a.py', { pointsAt: 'outside' }),
    `entry "demo_pkg/a.py" points at offset ${0x10000000}, outside the archive's entries`,
  ),
  wheelCase(
    'an entry hidden between two listed ones (streaming readers see it)',
    () => rawZip([{ name: 'demo_pkg/hidden.py', data: 'evil()', unlisted: true }, ...wheelEntries()]),
    'the wheel has 54 bytes before its first entry (leading data)',
  ),
  wheelCase(
    'an entry hidden after the last listed one',
    () => rawZip([...wheelEntries(), { name: 'demo_pkg/hidden.py', data: 'evil()', unlisted: true }]),
    `bytes that no entry accounts for between its last entry "${DIST_INFO}/WHEEL" and the central directory`,
  ),
  wheelCase(
    'an end record that counts fewer entries than the directory holds',
    () => rawZip([...wheelEntries(), { name: 'demo_pkg/a.py', data: 'x' }], { count: 3 }),
    "the wheel's central directory records take",
  ),
  wheelCase(
    'a ZIP64 locator that points away from the ZIP64 end record',
    () => rawZip(wheelEntries(), { zip64: { locatorDelta: -8 } }),
    "the wheel's ZIP64 end of central directory locator points at offset",
  ),
  wheelCase('a path with ".."', () => renamed('../evil.py'), 'the wheel entry "../evil.py" has a ".." component'),
  wheelCase('an absolute path', () => renamed('/etc/evil.py'), 'the wheel entry "/etc/evil.py" is an absolute path'),
  wheelCase('a drive letter', () => renamed('C:/evil.py'), 'the wheel entry "C:/evil.py" starts with a drive letter'),
  wheelCase('a backslash (a separator on Windows)', () => renamed('demo_pkg\\..\\..\\evil.py'), 'contains a backslash'),
  wheelCase('a NUL in a name (zipfile cuts the name there)', () => renamed('demo_pkg/a.py\0.txt'), 'contains the control character U+0000'),
  wheelCase('a "." component (written over the real METADATA)', () => renamed(`${DIST_INFO}/./METADATA`), 'has a "." component'),
  wheelCase('an empty component', () => renamed('demo_pkg//a.py'), 'has an empty path component'),
  wheelCase(
    'a name flagged UTF-8 that is not',
    () => renamed(Buffer.from([0x64, 0xff, 0xfe, 0x2e, 0x70, 0x79])),
    'is flagged as UTF-8 but is not valid UTF-8',
  ),
  wheelCase(
    'an Info-ZIP Unicode Path field that renames the entry (Python 3.12+ and yauzl use it, older zipfile does not)',
    () => {
      const name = Buffer.from('demo_pkg/a.py');
      const other = Buffer.from(`${DIST_INFO}/METADATA`);
      const field = Buffer.alloc(9 + other.length);
      field.writeUInt16LE(0x7075, 0);
      field.writeUInt16LE(5 + other.length, 2);
      field.writeUInt8(1, 4);
      field.writeUInt32LE(crc32(name), 5);
      other.copy(field, 9);
      return renamed(name, { extra: field });
    },
    'has an Info-ZIP Unicode Path extra field naming it',
  ),
];

/** Sdists an index must refuse, each with the check that refuses it (demo-pkg 1.0.0). */
export const HOSTILE_SDISTS: readonly HostileCase[] = [
  sdistCase(
    'a path with ".."',
    () => sdist({ name: `${TOP}/../../evil.py`, data: 'x' }),
    `the sdist member "${TOP}/../../evil.py" has a ".." component`,
  ),
  sdistCase('an absolute path', () => sdist({ name: '/etc/evil.py', data: 'x' }), 'the sdist member "/etc/evil.py" is an absolute path'),
  sdistCase('a backslash', () => sdist({ name: `${TOP}\\..\\evil.py`, data: 'x' }), 'contains a backslash'),
  sdistCase('a control character', () => sdist({ name: `${TOP}/evil\n.py`, data: 'x' }), 'contains the control character U+000A'),
  sdistCase(
    'a symlink to a system file',
    () => sdist({ name: `${TOP}/passwd`, type: 'symlink', linkname: '/etc/passwd' }),
    `the sdist member "${TOP}/passwd" is a symlink to the absolute path "/etc/passwd"`,
  ),
  sdistCase(
    'a symlink out through ".."',
    () => sdist({ name: `${TOP}/docs/passwd`, type: 'symlink', linkname: '../../../etc/passwd' }),
    "resolves outside the sdist's demo_pkg-1.0.0/ directory",
  ),
  sdistCase(
    'a symlink to the directory above the top-level one',
    () => sdist({ name: `${TOP}/up`, type: 'symlink', linkname: '..' }),
    `the sdist member "${TOP}/up" is a symlink to "..", which resolves outside`,
  ),
  sdistCase(
    'a symlink that leaves only through another symlink (its target, read as text, stays inside)',
    () => sdist({ name: `${TOP}/t`, type: 'symlink', linkname: 'a/s/../..' }, { name: `${TOP}/a/s`, type: 'symlink', linkname: '..' }),
    `the sdist member "${TOP}/t" is a symlink to "a/s/../..", which resolves outside`,
  ),
  sdistCase(
    'a member under a symlinked directory (d -> . and d/PKG-INFO: extraction replaces PKG-INFO)',
    () =>
      sdist(
        { name: `${TOP}/d`, type: 'symlink', linkname: '.' },
        { name: `${TOP}/d/PKG-INFO`, data: metadata('demo-pkg', '1.0.0', 'Requires-Dist: evillib\n') },
      ),
    `the sdist member "${TOP}/d/PKG-INFO" lies under the symlink "${TOP}/d"`,
  ),
  sdistCase(
    'a symlink loop',
    () => sdist({ name: `${TOP}/a`, type: 'symlink', linkname: 'b' }, { name: `${TOP}/b`, type: 'symlink', linkname: 'a' }),
    'is part of a symlink loop',
  ),
  sdistCase(
    'a hard link to a system file',
    () => sdist({ name: `${TOP}/passwd`, type: 'link', linkname: '/etc/passwd' }),
    `the sdist member "${TOP}/passwd" is a hard link to "/etc/passwd", which is an absolute path`,
  ),
  sdistCase(
    'a hard link to a file not in the archive',
    () => sdist({ name: `${TOP}/x`, type: 'link', linkname: `${TOP}/missing` }),
    'which is not an earlier regular file of the sdist',
  ),
  sdistCase(
    'a character device',
    () => sdist({ name: `${TOP}/tty`, type: 'character-device' }),
    `the sdist member "${TOP}/tty" is a character device`,
  ),
  sdistCase('a block device', () => sdist({ name: `${TOP}/sda`, type: 'block-device' }), 'is a block device'),
  sdistCase('a FIFO', () => sdist({ name: `${TOP}/pipe`, type: 'fifo' }), 'is a FIFO (named pipe)'),
  sdistCase(
    'a symlink with data (tar-stream skips it, tarfile reads it as headers)',
    async () => {
      const raw = patchTarHeader(
        await buildTar([
          { name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') },
          { name: `${TOP}/l`, type: 'symlink', linkname: 'PKG-INFO' },
        ]),
        `${TOP}/l`,
        (h) => h.write('00000001000\0', 124, 'latin1'),
      );
      return gzipSync(raw);
    },
    `the sdist member "${TOP}/l" is a symlink with 512 bytes of data`,
  ),
  sdistCase(
    'two top-level directories',
    () => sdist({ name: 'other-1.0/evil.py', data: 'x' }),
    'the sdist has more than one top-level entry ("demo_pkg-1.0.0" and "other-1.0")',
  ),
  sdistCase(
    'a file at the top level',
    () =>
      buildTarGz([
        { name: 'setup.py', data: 'x' },
        { name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') },
      ]),
    'the sdist member "setup.py" is a file at the top level',
  ),
  sdistCase(
    'two PKG-INFO (the index read the first, tarfile reads the last)',
    () => sdist({ name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0', 'Requires-Dist: evillib\n') }),
    `the sdist member "${TOP}/PKG-INFO" appears twice`,
  ),
  sdistCase(
    'a second PKG-INFO in other case',
    () => sdist({ name: `${TOP}/pkg-info`, data: 'x' }),
    `names the same file as "${TOP}/PKG-INFO" on case-insensitive file systems`,
  ),
  sdistCase(
    'a second tar after the end-of-archive blocks (tarfile stops at them)',
    async () => {
      const first = await buildTar([{ name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') }]);
      const second = await buildTar([{ name: `${TOP}/evil.py`, data: 'evil()' }]);
      return gzipSync(Buffer.concat([first, second]));
    },
    "Python's tarfile stops reading at that block, so pip would not see them (concatenated tar archives)",
  ),
  sdistCase(
    'a gzip bomb: 64 MiB of zeros in 64 KiB',
    () => sdist({ name: `${TOP}/zeros`, data: Buffer.alloc(64 * 1024 * 1024) }),
    'the sdist decompresses to more than 33554432 bytes',
  ),
  sdistCase(
    'a header after the last member that no member follows',
    async () => {
      const tarBytes = await buildTar([{ name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') }]);
      return gzipSync(Buffer.concat([tarBytes.subarray(0, tarBytes.length - 1024), orphanPaxHeader(), Buffer.alloc(1024)]));
    },
    'the sdist has 1536 bytes after its last member',
  ),
];
