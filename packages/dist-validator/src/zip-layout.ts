/**
 * Checks that a wheel's entries, as its central directory lists them, are the whole archive and say
 * the same in their local headers: the entries start at offset 0, follow each other without gaps
 * or overlaps up to the central directory, and each local header agrees with its central directory
 * record on the name, flags, compression method, CRC-32 and sizes (ZIP64 sizes and data
 * descriptors included). The central directory's records must also fill exactly the size the end
 * record gives it.
 *
 * Why: installers and scanners do not all read a zip the same way. pip reads the central
 * directory (Python's `zipfile`), streaming readers walk the local headers, and readers differ on
 * where the archive starts. Any byte not accounted for by this one layout (leading data, a hidden
 * entry in a gap, two records for one local header, a local header naming another file) lets one
 * file mean two archives: the index would validate and serve the metadata of one while an
 * installer installs the other. yauzl does not check any of this (it reads the directory, and a
 * local header only for the member it extracts), hence this module.
 */
import yauzl from 'yauzl';
import { clip } from './release.js';
import type { ReadAt, ZipEnd } from './zip-end.js';
import { decodeName } from './zip-names.js';

const LOCAL_SIG = 0x04034b50;
const LOCAL_SIZE = 30;
/** A central directory record's fixed part (APPNOTE 4.3.12), before the name, extra field and comment. */
export const CD_RECORD_SIZE = 46;
const DESCRIPTOR_SIG = 0x08074b50;
const DATA_DESCRIPTOR_FLAG = 0x08;
const ZIP64_EXTRA = 0x0001;

export interface LayoutProblem {
  /** The entry's name, or undefined for the archive as a whole. */
  readonly entry?: string;
  readonly message: string;
}

/** What the central directory says of one entry (yauzl's `Entry`, ZIP64 values resolved). */
export interface CentralRecord {
  /** The decoded name, for messages. */
  readonly name: string;
  readonly nameRaw: Buffer;
  readonly offset: number;
  readonly flags: number;
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Bytes the record takes in the central directory (CD_RECORD_SIZE + name + extra + comment). */
  readonly recordBytes: number;
}

const show = (name: string) => JSON.stringify(clip(name));

/** The local header's CRC-32 and sizes, with 0xFFFFFFFF sizes taken from its ZIP64 extra field. */
function localSizes(header: Buffer, extra: Buffer): { crc: number; compressed: number; uncompressed: number } | string {
  let uncompressed = header.readUInt32LE(22);
  let compressed = header.readUInt32LE(18);
  if (uncompressed !== 0xffffffff && compressed !== 0xffffffff) return { crc: header.readUInt32LE(14), compressed, uncompressed };
  let fields: ReturnType<typeof yauzl.parseExtraFields>;
  try {
    fields = yauzl.parseExtraFields(extra);
  } catch {
    return 'has a malformed extra field in its local header';
  }
  const zip64 = fields.filter((f) => f.id === ZIP64_EXTRA);
  if (zip64.length !== 1)
    return zip64.length
      ? 'has two ZIP64 extra fields in its local header'
      : 'has 0xFFFFFFFF sizes in its local header but no ZIP64 extra field';
  const data = zip64[0]!.data;
  let at = 0;
  if (uncompressed === 0xffffffff) {
    if (data.length < at + 8) return 'has a local ZIP64 extra field without the uncompressed size';
    uncompressed = Number(data.readBigUInt64LE(at));
    at += 8;
  }
  if (compressed === 0xffffffff) {
    if (data.length < at + 8) return 'has a local ZIP64 extra field without the compressed size';
    compressed = Number(data.readBigUInt64LE(at));
  }
  return { crc: header.readUInt32LE(14), compressed, uncompressed };
}

/**
 * The length of the data descriptor in `bytes` (APPNOTE 4.3.9: an optional signature, the CRC-32,
 * then 4- or 8-byte sizes) whose values are the central directory record's, preferring the one
 * after which the next entry starts (`endsAt`): writers differ on the signature and on the width.
 */
function descriptorLength(bytes: Buffer, entry: CentralRecord, endsAt: (length: number) => boolean): number | undefined {
  let fallback: number | undefined;
  for (const signed of [true, false]) {
    for (const wide of [false, true]) {
      const base = signed ? 4 : 0;
      const length = base + 4 + (wide ? 16 : 8);
      if (bytes.length < length) continue;
      if (signed && bytes.readUInt32LE(0) !== DESCRIPTOR_SIG) continue;
      const compressed = wide ? Number(bytes.readBigUInt64LE(base + 4)) : bytes.readUInt32LE(base + 4);
      const uncompressed = wide ? Number(bytes.readBigUInt64LE(base + 12)) : bytes.readUInt32LE(base + 8);
      if (bytes.readUInt32LE(base) !== entry.crc32 || compressed !== entry.compressedSize || uncompressed !== entry.uncompressedSize)
        continue;
      if (endsAt(length)) return length;
      fallback ??= length;
    }
  }
  return fallback;
}

export async function checkZipLayout(records: readonly CentralRecord[], end: ZipEnd, readAt: ReadAt): Promise<LayoutProblem | undefined> {
  const recordBytes = records.reduce((n, r) => n + r.recordBytes, 0);
  if (recordBytes !== end.cdSize) {
    return {
      message: `the wheel's central directory records take ${recordBytes} bytes but the end record gives the directory ${end.cdSize} bytes; readers that go by the size (Python's zipfile) and by the entry count would list different entries`,
    };
  }
  const sorted = [...records].sort((a, b) => a.offset - b.offset);
  let pos = 0;
  let previous: CentralRecord | undefined;
  for (let i = 0; i < sorted.length; i++) {
    const entry = sorted[i]!;
    const { name, offset: at } = entry;
    const problem = (message: string): LayoutProblem => ({ entry: name, message: `entry ${show(name)} ${message}` });
    if (at + LOCAL_SIZE > end.cdOffset)
      return problem(`points at offset ${at}, outside the archive's entries (the central directory starts at ${end.cdOffset})`);
    if (at < pos) {
      return problem(
        `starts at offset ${at}, inside ${previous ? `entry ${show(previous.name)}` : 'the previous entry'} (which ends at ${pos}): entries overlap`,
      );
    }
    if (at > pos) {
      return previous
        ? {
            entry: name,
            message: `the wheel has ${at - pos} bytes that no entry accounts for between entries ${show(previous.name)} and ${show(name)} (offsets ${pos} to ${at})`,
          }
        : { message: `the wheel has ${at} bytes before its first entry (leading data); its first entry must start at offset 0` };
    }
    const header = await readAt(at, LOCAL_SIZE);
    if (header.length < LOCAL_SIZE || header.readUInt32LE(0) !== LOCAL_SIG) return problem(`has no local file header at offset ${at}`);
    const nameLength = header.readUInt16LE(26);
    const extraLength = header.readUInt16LE(28);
    const dataStart = at + LOCAL_SIZE + nameLength + extraLength;
    if (dataStart > end.cdOffset) return problem(`has a local header that runs into the central directory`);
    const variable = await readAt(at + LOCAL_SIZE, nameLength + extraLength);
    const localName = variable.subarray(0, nameLength);
    const flags = header.readUInt16LE(6);
    if (!localName.equals(entry.nameRaw)) {
      return problem(
        `is named ${show(decodeName(localName, flags) ?? '')} in its local header; the central directory and the local header must name the same file`,
      );
    }
    if (flags !== entry.flags) {
      return problem(
        `has flags 0x${flags.toString(16)} in its local header and 0x${entry.flags.toString(16)} in the central directory; they must agree`,
      );
    }
    const method = header.readUInt16LE(8);
    if (method !== entry.method) {
      return problem(`has compression method ${method} in its local header and ${entry.method} in the central directory; they must agree`);
    }
    const local = localSizes(header, variable.subarray(nameLength));
    if (typeof local === 'string') return problem(local);
    const withDescriptor = (flags & DATA_DESCRIPTOR_FLAG) !== 0;
    // With a data descriptor the local header may leave the CRC-32 and sizes at zero.
    for (const [what, value, expected] of [
      ['CRC-32', local.crc, entry.crc32],
      ['compressed size', local.compressed, entry.compressedSize],
      ['uncompressed size', local.uncompressed, entry.uncompressedSize],
    ] as const) {
      if (value !== expected && !(withDescriptor && value === 0)) {
        return problem(`has ${what} ${value} in its local header and ${expected} in the central directory; they must agree`);
      }
    }
    const dataEnd = dataStart + entry.compressedSize;
    if (dataEnd > end.cdOffset)
      return problem(`has data (offsets ${dataStart} to ${dataEnd}) that runs into the central directory at ${end.cdOffset}`);
    const next = i + 1 < sorted.length ? sorted[i + 1]!.offset : end.cdOffset;
    pos = dataEnd;
    if (withDescriptor) {
      const bytes = await readAt(dataEnd, Math.min(24, end.cdOffset - dataEnd));
      const length = descriptorLength(bytes, entry, (n) => dataEnd + n === next);
      if (length === undefined) return problem('has no data descriptor that matches its central directory record (CRC-32 and sizes)');
      pos += length;
    }
    previous = entry;
  }
  if (pos < end.cdOffset) {
    return previous
      ? {
          message: `the wheel has ${end.cdOffset - pos} bytes that no entry accounts for between its last entry ${show(previous.name)} and the central directory (offsets ${pos} to ${end.cdOffset})`,
        }
      : { message: `the wheel has ${end.cdOffset} bytes before its central directory and no entries (leading data)` };
  }
  return undefined;
}
