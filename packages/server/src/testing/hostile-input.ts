/**
 * Hostile input for the session API (PEP 694 "Errors"), shared by the server's fuzz test and the
 * reference index's hostile-input run: fast-check arbitraries for bodies shaped like the schema but
 * with values of the wrong types, fixed bodies that break JSON itself, and paths with traversal
 * where an id goes.
 */
import fc from 'fast-check';

/** A value of any type a JSON field might wrongly hold: strings (binary, huge), numbers out of range, null, arrays, objects. */
export const anyFieldValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
  fc.constant('x'.repeat(5000)),
  fc.constant(-1),
  fc.constant(Number.MAX_SAFE_INTEGER + 10),
);

/** A body with any of the session API's fields, each a right value, an odd one (traversal, NUL, fullwidth) or one of the wrong type. */
export const schemaShapedBody = fc.record(
  {
    meta: fc.oneof(anyFieldValue, fc.record({ 'api-version': fc.oneof(anyFieldValue, fc.constant('2.0')) }, { requiredKeys: [] })),
    name: anyFieldValue,
    version: anyFieldValue,
    filename: fc.oneof(
      anyFieldValue,
      fc.constantFrom(
        '../../etc/passwd',
        '%2e%2e/x-1.0.tar.gz',
        'a\u0000b-1.0.tar.gz',
        'fuzz_target-1.0.tar.gz',
        'ｆuzz_target-1.0.tar.gz',
      ),
    ),
    size: anyFieldValue,
    hashes: fc.oneof(
      anyFieldValue,
      fc.dictionary(
        fc.constantFrom('sha256', 'md5', 'shake_128', '__proto__', 'constructor'),
        fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 70 }), anyFieldValue),
      ),
    ),
    mechanism: fc.oneof(anyFieldValue, fc.constant('http-post-bytes')),
    'extend-for': anyFieldValue,
  },
  { requiredKeys: [] },
);

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
