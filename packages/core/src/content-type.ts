/**
 * Media types of the Upload API (PEP 694 "Content Types", which copies PEP 691's scheme
 * `application/vnd.pypi.upload.$version+$format`): parsing `Content-Type`, checking
 * `meta.api-version` against it, and negotiating `Accept`.
 *
 * Hand-written, no dependency: `content-type` 3.x needs Node >= 22 (we support 20.19) and is
 * lenient by design (it never reports malformed input), 1.x is the superseded CommonJS line, and
 * the RFC 9110 grammar is a few lines. `negotiator` only returns the winning type; we offer one
 * type, so negotiation is just "the q of the most specific range covering it", and the 406 detail
 * must say *why* nothing matched (version or format), which needs the parsed ranges anyway.
 */
import { ProblemError } from './problem.js';
import { API_MAJOR } from './version.js';

/** The one request and response media type of Upload API 2.x. */
export const UPLOAD_V2_JSON = 'application/vnd.pypi.upload.v2+json';

export interface MediaType {
  /** Lower-cased. */
  readonly type: string;
  /** Lower-cased. */
  readonly subtype: string;
  /** Names lower-cased, values unquoted and case-preserved; `q` included as sent. */
  readonly params: Record<string, string>;
}

export interface UploadContentType {
  readonly major: number;
  readonly format: 'json';
}

// RFC 9110 §5.6.2 token, §5.6.4 quoted-string, §5.6.6 parameters (empty `;` elements allowed).
// Sticky regexes applied in a loop, never one nested pattern: no catastrophic backtracking.
const TOKEN = "[!#$%&'*+.^`|~\\w-]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t !-~\\x80-\\xff])*"';
const TYPE_RE = new RegExp(`[ \\t]*(${TOKEN})/(${TOKEN})`, 'y');
const PARAM_RE = new RegExp(`[ \\t]*;[ \\t]*(?:(${TOKEN})=(${TOKEN}|${QUOTED}))?`, 'y');
const OWS_END = /^[ \t]*$/;

/** Parses one media type (or Accept media range); null when it does not follow RFC 9110. */
export function parseMediaType(header: string): MediaType | null {
  TYPE_RE.lastIndex = 0;
  const t = TYPE_RE.exec(header);
  if (!t) return null;
  const params: [string, string][] = [];
  let pos = TYPE_RE.lastIndex;
  for (;;) {
    PARAM_RE.lastIndex = pos;
    const p = PARAM_RE.exec(header);
    if (!p) break;
    pos = PARAM_RE.lastIndex; // always advances: a match consumes at least the `;`
    const [, name, value] = p;
    if (name === undefined || value === undefined) continue;
    params.push([name.toLowerCase(), value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value]);
  }
  if (!OWS_END.test(header.slice(pos))) return null;
  const [type = '', subtype = ''] = t.slice(1, 3).map((s) => s.toLowerCase()); // both always match
  // fromEntries defines own properties, so a `__proto__` parameter cannot touch the prototype.
  return { type, subtype, params: Object.fromEntries(params) };
}

/** `version` and `format` of an `application/vnd.pypi.upload.*` type, else null. */
function uploadParts(m: MediaType): { version: string; format: string } | null {
  const u = m.type === 'application' ? /^vnd\.pypi\.upload\.([^+]*)\+(.*)$/.exec(m.subtype) : null;
  return u ? { version: u[1]!, format: u[2]! } : null;
}

/** One phrase per part of an upload media type that this server does not implement. */
function unsupportedParts(u: { version: string; format: string } | null): string[] {
  const why: string[] = [];
  if (!u) return why;
  if (u.version === 'latest') why.push('the "latest" alias of PEP 691 is not defined by PEP 694');
  else if (u.version !== `v${API_MAJOR}`) {
    why.push(`API version ${u.version} is not supported, only v${API_MAJOR}`);
  }
  if (u.format !== 'json') why.push(`format +${u.format} is not supported, only +json`);
  return why;
}

/** Keeps client input echoed in a detail short. */
const clip = (s: string): string => (s.length > 120 ? `${s.slice(0, 120)}…` : s);

/**
 * Checks the `Content-Type` of a non-file-upload request. PEP 694 "Content Types": such requests
 * MUST use exactly `application/vnd.pypi.upload.v2+json`; plain `application/json` is refused.
 * Parameters are ignored: JSON is always UTF-8 (RFC 8259), so `charset` carries nothing.
 * @throws ProblemError `unsupported-media-type` (415), with a detail naming the required type.
 */
export function parseUploadContentType(header: string | undefined): UploadContentType {
  const fail = (why: string) => new ProblemError('unsupported-media-type', `${why}; PEP 694 requests must be sent as ${UPLOAD_V2_JSON}.`);
  if (header === undefined || OWS_END.test(header)) {
    throw fail('The Content-Type header is missing');
  }
  const m = parseMediaType(header);
  if (!m) throw fail(`Content-Type ${JSON.stringify(clip(header))} is not a valid media type`);
  const u = uploadParts(m);
  const type = clip(`${m.type}/${m.subtype}`);
  if (!u) throw fail(`Content-Type ${type} is not accepted`);
  const why = unsupportedParts(u);
  if (why.length > 0) throw fail(`Content-Type ${type}: ${why.join('; ')}`);
  return { major: API_MAJOR, format: 'json' };
}

/** Whether a Content-Type is the Upload API's JSON type (for routing; never throws). */
export function isUploadJson(contentType: string | undefined): boolean {
  try {
    parseUploadContentType(contentType);
    return true;
  } catch {
    return false;
  }
}

const API_VERSION_RE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/**
 * PEP 694 "Content Types": the major of `meta.api-version` MUST match the Content-Type major.
 * Any minor is accepted: minor versions "should never be disruptive" (which is why only the major
 * is in the media type), so a client on a newer 2.x still speaks a request this server reads.
 * An absent or non-string `meta`/`api-version` is left to the schema, which reports it.
 * @throws ProblemError `invalid-body` when it is a string but not `MAJOR.MINOR`,
 *   `api-version-mismatch` when the majors differ.
 */
export function checkApiVersion(body: unknown, contentMajor: number): void {
  const meta = isRecord(body) ? body['meta'] : undefined;
  const version = isRecord(meta) ? meta['api-version'] : undefined;
  if (typeof version !== 'string') return;
  const source = '/meta/api-version';
  const shown = JSON.stringify(clip(version));
  const v = API_VERSION_RE.exec(version);
  if (!v) {
    const message = `must be a MAJOR.MINOR version such as "${API_MAJOR}.0", got ${shown}`;
    throw new ProblemError('invalid-body', `meta.api-version ${message}.`, {
      errors: [{ source, message }],
    });
  }
  if (Number(v[1]) !== contentMajor) {
    const message = `major version ${v[1]} does not match the Content-Type major ${contentMajor}`;
    throw new ProblemError(
      'api-version-mismatch',
      `meta.api-version is ${shown} but the Content-Type is ` +
        `application/vnd.pypi.upload.v${contentMajor}+json; PEP 694 requires the majors to match.`,
      { errors: [{ source, message }] },
    );
  }
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Splits a comma-separated header list, keeping commas inside quoted strings. */
function splitList(s: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

const QVALUE_RE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/; // RFC 9110 §12.4.2

/** One member of an `Accept` header: the media range and its weight. */
export interface AcceptRange {
  readonly range: MediaType;
  /** The `q` parameter (RFC 9110 §12.4.2), 1 when absent. */
  readonly q: number;
}

/**
 * The members of an `Accept` header (RFC 9110 §12.5.1) in the order sent, commas inside quoted
 * strings kept. Malformed members, and members whose `q` is not a valid qvalue, are dropped, so
 * an absent, empty or wholly malformed header gives an empty list (callers read that as `*\/*`).
 * The one Accept parser of the project: the Upload 2.0 API and the Simple Repository API both
 * negotiate with it.
 */
export function parseAccept(header: string | undefined): AcceptRange[] {
  return splitList(header ?? '').flatMap((member) => {
    const range = parseMediaType(member);
    const q = range?.params['q'] ?? '1';
    return range && QVALUE_RE.test(q) ? [{ range, q: Number(q) }] : [];
  });
}

/**
 * How specifically a range covers our one representation; -1 when it does not. `application/json`
 * counts (below the exact type): the body IS JSON (`+json`, RFC 6839), so a client that can read
 * JSON can read it. We still always label it `application/vnd.pypi.upload.v2+json`, never the
 * unversioned alias PEP 691 ("Why not add an application/json alias") rejects, so the client can
 * tell the version from the Content-Type; turning such clients away with 406 would gain nothing.
 */
function specificity(m: MediaType): number {
  const t = `${m.type}/${m.subtype}`;
  return ['*/*', 'application/*', 'application/json', UPLOAD_V2_JSON].indexOf(t);
}

/**
 * Server-driven negotiation (PEP 691 "Version + Format Selection", adopted by PEP 694 "Content
 * Types"): returns the media type to respond with. The q of the most specific range covering our
 * type decides (RFC 9110 §12.5.1); order does not matter; `q=0` means "not acceptable".
 * An absent or empty Accept accepts anything (PEP 691 reads absence as the match-all range);
 * malformed members are ignored, and a header with none left is treated as absent.
 * `latest` is not honoured: PEP 694 does not define it, unlike PEP 691.
 * The 406 itself is still rendered as problem+json (RFC 9110 lets error responses ignore Accept).
 * @throws ProblemError `not-acceptable` (406), naming what was asked and what is offered.
 */
export function negotiateResponseType(accept: string | undefined): typeof UPLOAD_V2_JSON {
  const ranges = parseAccept(accept).map(({ range: m, q }) => ({ m, q, rank: specificity(m) }));
  if (ranges.length === 0) return UPLOAD_V2_JSON;
  let best: (typeof ranges)[number] | undefined;
  for (const r of ranges) {
    const better = !best || r.rank > best.rank || (r.rank === best.rank && r.q > best.q);
    if (r.rank >= 0 && better) best = r;
  }
  if (best && best.q > 0) return UPLOAD_V2_JSON;

  // Nothing acceptable: say what was asked, why it is not served, and what is.
  const wanted = ranges.filter((r) => r.q > 0);
  const asked = [...new Set(wanted.map((r) => `${r.m.type}/${r.m.subtype}`))];
  const why = [...new Set(wanted.flatMap((r) => unsupportedParts(uploadParts(r.m))))];
  const said: string[] = [];
  if (asked.length > 0) {
    const reasons = why.length > 0 ? `: ${clip(why.join('; '))}` : '';
    said.push(`asked for ${clip(asked.join(', '))}${reasons}`);
  }
  if (best) said.push(`rules out ${best.m.type}/${best.m.subtype} with q=0`);
  if (said.length === 0) said.push('accepts nothing (every range has q=0)');
  throw new ProblemError('not-acceptable', `Only ${UPLOAD_V2_JSON} is available; the Accept header ${said.join('; it ')}.`, {
    extensions: { available: [UPLOAD_V2_JSON] },
  });
}
