/**
 * Hostile input for the session API (PEP 694 "Errors"), shared by the server's fuzz test and the
 * reference index's hostile-input run: fixed bodies that break JSON itself, and paths with
 * traversal where an id goes. The fast-check arbitraries are in `./arbitraries.ts`
 * (`@pep694/server/testing/arbitraries`), so that this entry loads without fast-check.
 */
/** Bodies no generator is likely to hit: duplicate keys, invalid UTF-8, a BOM, truncated JSON, NUL, a 60 KB string. */
export const MALFORMED_JSON_BODIES: readonly (string | Uint8Array)[] = [
  '{"meta":{"api-version":"2.0"},"meta":{"api-version":"3.0"},"name":"x","version":"1"}',
  '{"meta":{"api-version":"2.0"},"extend-for":60,"extend-for":"soon"}',
  new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
  new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
  '{"meta":',
  '',
  'null',
  '\u0000',
  `{"meta":{"api-version":"2.0"},"name":"${'a'.repeat(60_000)}","version":"1"}`,
];

/** JSON nested 5000 arrays deep. */
export const DEEPLY_NESTED_JSON = `${'['.repeat(5000)}${']'.repeat(5000)}`;

/** Traversal and odd characters (NUL, bidi override, fullwidth and overlong dots, 5000 characters) for one path segment. */
const HOSTILE_SEGMENTS = [
  '..',
  '%2e%2e',
  '%2e%2e%2f%2e%2e',
  '%00',
  'a%00b',
  '%E2%80%AE',
  '%EF%BC%8E%EF%BC%8E',
  '%C0%AE%C0%AE',
  'x'.repeat(5000),
];

/** Session API paths (relative to the upload URL) with a hostile segment where an id goes: none may reach storage. */
export const HOSTILE_API_PATHS: readonly string[] = HOSTILE_SEGMENTS.flatMap((segment) => [
  `sessions/${segment}`,
  `files/${segment}`,
  `sessions/${segment}/publish`,
  `files/${segment}/complete`,
]);
