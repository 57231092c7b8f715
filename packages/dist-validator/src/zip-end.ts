/**
 * The end of a wheel's zip: the end of central directory record (EOCD) and, for ZIP64, its locator
 * and record (APPNOTE.TXT 4.3.14 to 4.3.16). yauzl reads them too, but it trusts the central
 * directory offset as an absolute position, while Python's `zipfile` (which pip uses) places the
 * central directory right before the end records and shifts every offset by the difference
 * ("concat" in `zipfile._RealGetContents`). Two readers can therefore see two different archives in
 * one file: one zip's entries and central directory followed by a second complete zip is read as
 * the first by yauzl and as the second by pip. So we accept only the layout on which both agree:
 *
 *   [entries][central directory][ZIP64 end record 56 bytes][ZIP64 locator 20 bytes]?[EOCD + comment]
 *
 * with nothing after the comment, the central directory ending exactly where the end records
 * begin, and the ZIP64 record exactly where Python looks for it (right before its locator), which is
 * also where the locator points (yauzl follows the locator).
 */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

export interface ZipEnd {
  /** Where the central directory starts and how many bytes it has, as the end records say. */
  readonly cdOffset: number;
  readonly cdSize: number;
  readonly entryCount: number;
}

export type ZipEndResult = { readonly ok: true; readonly end: ZipEnd } | { readonly ok: false; readonly message: string };

const EOCD_SIG = 0x06054b50;
const EOCD_SIZE = 22;
const LOCATOR_SIG = 0x07064b50;
const LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const MAX_COMMENT = 0xffff;

const refuse = (message: string): ZipEndResult => ({ ok: false, message });
const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

export async function readZipEnd(readAt: ReadAt, size: number): Promise<ZipEndResult> {
  // Search backwards from the last place an EOCD fits, as yauzl and zipfile both do (the last
  // signature wins), over the bytes a comment can cover.
  const tailStart = Math.max(0, size - (EOCD_SIZE + MAX_COMMENT));
  const tail = await readAt(tailStart, size - tailStart);
  let at = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    return refuse(
      'the wheel is not a readable zip archive: it has no end of central directory record (not a zip file, or a truncated one)',
    );
  }
  const eocdOffset = tailStart + at;
  const eocd = tail.subarray(at);
  const commentLength = eocd.readUInt16LE(20);
  const after = eocd.length - EOCD_SIZE;
  if (commentLength > after) {
    return refuse(
      `the wheel is not a readable zip archive: its end of central directory record declares a ${commentLength}-byte comment but only ${after} bytes follow (truncated)`,
    );
  }
  if (commentLength < after) {
    return refuse(
      `the wheel has ${after - commentLength} bytes after its end of central directory record (trailing data); a wheel must end there, since zip readers differ on what such a file holds`,
    );
  }
  if (eocd.readUInt16LE(4) !== 0 || eocd.readUInt16LE(6) !== 0)
    return refuse('the wheel is not a readable zip archive: it spans several disks');
  const onDisk = eocd.readUInt16LE(8);
  let entryCount = eocd.readUInt16LE(10);
  let cdSize = eocd.readUInt32LE(12);
  let cdOffset = eocd.readUInt32LE(16);
  if (onDisk !== entryCount) {
    return refuse(
      `the wheel's end of central directory record counts ${onDisk} entries on this disk but ${entryCount} in all; a wheel is a single-disk zip`,
    );
  }

  // ZIP64: a locator right before the EOCD (where both readers look).
  let cdEnd = eocdOffset;
  const locatorOffset = eocdOffset - LOCATOR_SIZE;
  if (locatorOffset >= 0 && (await readAt(locatorOffset, 4)).readUInt32LE(0) === LOCATOR_SIG) {
    const locator = await readAt(locatorOffset, LOCATOR_SIZE);
    const recordOffset = locatorOffset - ZIP64_EOCD_SIZE;
    const pointsAt = u64(locator, 8);
    if (locator.readUInt32LE(4) !== 0 || locator.readUInt32LE(16) > 1)
      return refuse('the wheel is not a readable zip archive: it spans several disks');
    if (recordOffset < 0 || pointsAt !== recordOffset) {
      return refuse(
        `the wheel's ZIP64 end of central directory locator points at offset ${pointsAt}, but the ZIP64 end record must be the ${ZIP64_EOCD_SIZE} bytes right before the locator (offset ${recordOffset}); zip readers differ on which one they read`,
      );
    }
    const record = await readAt(recordOffset, ZIP64_EOCD_SIZE);
    if (record.length < ZIP64_EOCD_SIZE || record.readUInt32LE(0) !== ZIP64_EOCD_SIG) {
      return refuse(
        `the wheel is not a readable zip archive: no ZIP64 end of central directory record at offset ${recordOffset}, where its locator points`,
      );
    }
    if (u64(record, 4) !== ZIP64_EOCD_SIZE - 12) {
      return refuse(
        "the wheel's ZIP64 end of central directory record has extensible data; a wheel's must be the plain 56-byte record, which every zip reader finds in the same place",
      );
    }
    if (record.readUInt32LE(16) !== 0 || record.readUInt32LE(20) !== 0)
      return refuse('the wheel is not a readable zip archive: it spans several disks');
    const onDisk64 = u64(record, 24);
    const count64 = u64(record, 32);
    const size64 = u64(record, 40);
    const offset64 = u64(record, 48);
    if (onDisk64 !== count64) {
      return refuse(
        `the wheel's ZIP64 end of central directory record counts ${onDisk64} entries on this disk but ${count64} in all; a wheel is a single-disk zip`,
      );
    }
    // The 32-bit fields must say the same or hold the "see ZIP64" sentinel: readers that ignore
    // ZIP64 where they think they can would otherwise see another directory.
    for (const [what, value, value64, sentinel] of [
      ['entry count', entryCount, count64, 0xffff],
      ['central directory size', cdSize, size64, 0xffffffff],
      ['central directory offset', cdOffset, offset64, 0xffffffff],
    ] as const) {
      if (value !== value64 && value !== sentinel) {
        return refuse(
          `the wheel's end of central directory record gives the ${what} as ${value} and its ZIP64 end record as ${value64}; they must agree`,
        );
      }
    }
    entryCount = count64;
    cdSize = size64;
    cdOffset = offset64;
    cdEnd = recordOffset;
  }

  if (cdOffset + cdSize !== cdEnd) {
    if (cdOffset + cdSize < cdEnd) {
      return refuse(
        `the wheel's central directory (offset ${cdOffset}, ${cdSize} bytes) ends at ${cdOffset + cdSize}, but the end records start at ${cdEnd}: ${cdEnd - cdOffset - cdSize} bytes are unaccounted for (data prepended to the zip, or one zip concatenated with another); zip readers differ on which entries such a file holds`,
      );
    }
    return refuse(
      `the wheel's central directory (offset ${cdOffset}, ${cdSize} bytes) runs past the end records at ${cdEnd}: it points outside the archive`,
    );
  }
  return { ok: true, end: { cdOffset, cdSize, entryCount } };
}
