/**
 * The header part of a core metadata file (PyPA "Core metadata specifications": the wheel's
 * `METADATA`, the sdist's `PKG-INFO`). The format is RFC 822 style email headers, read by
 * `packaging` through Python's `email.parser` (compat32): a field is `Name: value`, a line that
 * starts with a space or a tab continues the previous field, the headers end at the first blank
 * line (the rest is the description body) or at the first line that is not a header.
 *
 * Hand-written on purpose: it is twenty lines, not an archive parser, and no maintained npm
 * package reads core metadata.
 */

/** Header fields by lower-cased name, every occurrence in order. */
export type MetadataHeaders = ReadonlyMap<string, readonly string[]>;

export type ParsedMetadata = { readonly ok: true; readonly headers: MetadataHeaders } | { readonly ok: false; readonly message: string };

const FIELD = /^([\x21-\x39\x3b-\x7e]+):[ \t]*(.*)$/; // printable ASCII but ':' for the name (RFC 5322 ftext)

/** Parses the headers of a core metadata file; the file must be UTF-8 (core metadata 2.1+). */
export function parseMetadataHeaders(bytes: Uint8Array, what: string): ParsedMetadata {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, message: `${what} is not valid UTF-8` };
  }
  const headers = new Map<string, string[]>();
  let last: { values: string[]; index: number } | undefined;
  for (const line of text.split(/\r\n|\n|\r/)) {
    if (line === '') break; // end of headers; the body (description) follows
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      // Unfolding (RFC 5322 §2.2.3): the line break goes, the whitespace stays.
      last.values[last.index] = `${last.values[last.index] ?? ''}${line}`;
      continue;
    }
    const m = FIELD.exec(line);
    if (!m) break; // not a header: email.parser starts the body here
    const name = (m[1] ?? '').toLowerCase();
    const values = headers.get(name) ?? [];
    values.push(m[2] ?? '');
    headers.set(name, values);
    last = { values, index: values.length - 1 };
  }
  for (const values of headers.values()) {
    for (let i = 0; i < values.length; i++) values[i] = (values[i] ?? '').trim();
  }
  return { ok: true, headers };
}

/** The one value of a single-use field; undefined when absent, an error message when repeated. */
export function singleField(headers: MetadataHeaders, name: string, what: string): { value?: string; error?: string } {
  const values = headers.get(name.toLowerCase()) ?? [];
  if (values.length > 1) return { error: `${what} has ${values.length} ${name} fields; it may have only one` };
  const value = values[0];
  return value === undefined ? {} : { value };
}
