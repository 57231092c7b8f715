/**
 * fast-check arbitraries for session API bodies shaped like the schema but with values of the wrong
 * types (PEP 694 "Errors"), shared by the server's fuzz test and the reference index's hostile-input
 * run. A separate entry, `@pep694/server/testing/arbitraries`, because fast-check is an optional
 * peer: `@pep694/server/testing` (mechanismConformance and the rest) must load without it.
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
