/**
 * A wheel entry's name as Python's `zipfile` (and so pip) reads it: UTF-8 when general purpose
 * flag bit 11 is set, else cp437 (the binary distribution format says names are UTF-8; `zipfile`
 * sets the flag whenever a name is not ASCII). yauzl opens the zip with `decodeStrings: false`, so
 * that its own renaming (backslashes to slashes, the Info-ZIP Unicode Path field) cannot make us
 * read a name that pip would not; its decoder is used for cp437.
 */
import yauzl, { type Entry } from 'yauzl';

const UTF8_FLAG = 0x800;
const ZIP64_EXTRA = 0x0001;
const UNICODE_PATH_EXTRA = 0x7075;

export type DecodedName =
  { readonly ok: true; readonly name: string } | { readonly ok: false; readonly shown: string; readonly message: string };

/** Decodes `raw` as a name stored with these flags; lossy (for messages) unless `strict`. */
export function decodeName(raw: Buffer, flags: number, strict = false): string | undefined {
  // ASCII reads the same in both (and most names are ASCII: zipfile flags only the others).
  if (raw.every((b) => b < 0x80)) return raw.toString('latin1');
  if (flags & UTF8_FLAG) {
    try {
      return new TextDecoder('utf-8', { fatal: strict }).decode(raw);
    } catch {
      return undefined;
    }
  }
  return yauzl.getFileNameLowLevel(flags, raw, [], true);
}

export function entryName(entry: Entry): DecodedName {
  const flags = entry.generalPurposeBitFlag;
  const name = decodeName(entry.fileNameRaw, flags, true);
  if (entry.extraFields.length === 0 && name !== undefined) return { ok: true, name };
  const shown = decodeName(entry.fileNameRaw, flags) ?? '';
  if (name === undefined) return { ok: false, shown, message: 'is flagged as UTF-8 but is not valid UTF-8' };
  for (const id of [ZIP64_EXTRA, UNICODE_PATH_EXTRA]) {
    if (entry.extraFields.filter((f) => f.id === id).length > 1) {
      return {
        ok: false,
        shown,
        message: `has two extra fields of type 0x${id.toString(16).padStart(4, '0')}; zip readers differ on which one they use`,
      };
    }
  }
  // The Info-ZIP Unicode Path field (when its CRC matches the name) renames the entry for yauzl
  // and for zipfile from Python 3.12 on, but not for older zipfile: it must say the same.
  const unicodePath = yauzl.getFileNameLowLevel(flags, entry.fileNameRaw, entry.extraFields, true);
  if (unicodePath !== name) {
    return {
      ok: false,
      shown,
      message: `has an Info-ZIP Unicode Path extra field naming it ${JSON.stringify(unicodePath)}; zip readers differ on which name they use`,
    };
  }
  return { ok: true, name };
}
