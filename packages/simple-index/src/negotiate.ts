/**
 * PEP 691 "Version + Format Selection": server-driven negotiation between the JSON and HTML
 * serializations of the Simple Repository API, with q-values and wildcards, and the optional
 * `?format=` URL parameter (which, when it names a type we serve, takes precedence).
 */
import { parseAccept, ProblemError } from '@pep694/core';

export const SIMPLE_V1_JSON = 'application/vnd.pypi.simple.v1+json';
export const SIMPLE_V1_HTML = 'application/vnd.pypi.simple.v1+html';
export const TEXT_HTML = 'text/html';

/** The media types we answer with, in our order of preference (PEP 691: text/html last). */
export const SIMPLE_TYPES = [SIMPLE_V1_JSON, SIMPLE_V1_HTML, TEXT_HTML] as const;
export type SimpleType = (typeof SIMPLE_TYPES)[number];

/** `latest` (PEP 691) is answered with the concrete v1 type. */
const ALIASES: Readonly<Record<string, SimpleType>> = {
  'application/vnd.pypi.simple.latest+json': SIMPLE_V1_JSON,
  'application/vnd.pypi.simple.latest+html': SIMPLE_V1_HTML,
};

const canonical = (t: string): string => ALIASES[t] ?? t;
/**
 * Chooses the response type. Each type we serve gets the q of the most specific range that
 * covers it (exact > `type/*` > `*\/*`); the highest q wins, then the more specific match
 * (a type the client named beats one it only reached by wildcard), then our preference. An absent
 * or empty Accept means `*\/*` (PEP 691). PEP 691 lets the server choose for `*\/*`; we answer
 * `text/html` there, as PyPI and devpi do, because the clients that send no Accept header (older
 * pip, mirroring and scanning tools, plain curl and requests scripts) are PEP 503 clients that
 * parse HTML. A client that names a JSON type (pip does) or `application/*` gets JSON.
 * @throws ProblemError `not-acceptable` (406) when the client accepts none of them.
 */
export function negotiateSimpleType(accept: string | undefined, format?: unknown): SimpleType {
  if (typeof format === 'string') {
    const wanted = canonical(format.trim().toLowerCase());
    if ((SIMPLE_TYPES as readonly string[]).includes(wanted)) return wanted as SimpleType;
  }
  const ranges = parseAccept(accept).map(({ range, q }) => ({ type: canonical(`${range.type}/${range.subtype}`), q }));
  if (ranges.length === 0) return TEXT_HTML;

  let best: { type: SimpleType; q: number; rank: number } | undefined;
  // In our order of preference: a later type must be strictly better to win.
  for (const type of SIMPLE_TYPES) {
    const match = qualityOf(ranges, type);
    if (!match || match.q <= 0) continue;
    const better = !best || match.q > best.q || (match.q === best.q && match.rank > best.rank);
    if (better) best = { type, q: match.q, rank: match.rank };
  }
  if (best?.rank === 0) {
    // Reached only by `*/*`: PEP 503's text/html, unless the client ruled it out or rated it lower.
    const html = qualityOf(ranges, TEXT_HTML);
    if (html && html.rank === 0 && html.q >= best.q) return TEXT_HTML;
  }
  if (best) return best.type;
  throw new ProblemError(
    'not-acceptable',
    `The Simple Repository API is served as ${SIMPLE_TYPES.join(', ')}; the Accept header allows none of them.`,
    {
      extensions: { available: [...SIMPLE_TYPES] },
    },
  );
}

/**
 * The q of the most specific range covering `type` (exact: rank 2, `type/*`: 1, `*\/*`: 0), or
 * undefined when no range covers it.
 */
function qualityOf(ranges: readonly { type: string; q: number }[], type: SimpleType): { q: number; rank: number } | undefined {
  const [major] = type.split('/');
  let match: { q: number; rank: number } | undefined;
  for (const r of ranges) {
    const rank = r.type === type ? 2 : r.type === `${major}/*` ? 1 : r.type === '*/*' ? 0 : -1;
    if (rank >= 0 && (!match || rank > match.rank || (rank === match.rank && r.q > match.q))) match = { q: r.q, rank };
  }
  return match;
}
