/**
 * Issue #21: the core metadata fields the index serves or compares are validated and bounded at
 * completion, so that a small upload cannot make every project page megabytes long.
 * Core metadata "Requires-Python": "The format of a requirement string contains from one to four
 * parts ... a version specifier" (PyPA "Version specifiers").
 */
import { describe, expect, it } from 'vitest';
import { createDistributionValidator, DEFAULT_LIMITS, DistributionValidator } from './index.js';
import { artifact, buildTarGz, buildZip, metadata, WHEEL_FILE } from './test-support.js';

const validator = createDistributionValidator();
const WHEEL_NAME = 'demo_pkg-1.0.0-py3-none-any.whl';
const DIST_INFO = 'demo_pkg-1.0.0.dist-info';

const wheelWith = (meta: string) =>
  buildZip([
    { name: 'demo_pkg/__init__.py', data: 'x = 1\n' },
    { name: `${DIST_INFO}/METADATA`, data: meta },
    { name: `${DIST_INFO}/WHEEL`, data: WHEEL_FILE },
  ]);
const sdistWith = (meta: string) => buildTarGz([{ name: 'demo_pkg-1.0.0/PKG-INFO', data: meta }]);

async function refusal(bytes: Buffer, filename = WHEEL_NAME, v = validator) {
  const result = await v.validate(artifact(bytes, filename));
  expect(result.ok, JSON.stringify(result).slice(0, 500)).toBe(false);
  if (result.ok) throw new Error('accepted');
  return result;
}

describe('Requires-Python must be a PEP 440 specifier set of bounded length', () => {
  it('the issue #21 wheel: 1.5 KB whose METADATA has Requires-Python followed by a million "<" is refused', async () => {
    const bytes = await wheelWith(metadata('demo-pkg', '1.0.0', `Requires-Python: ${'<'.repeat(1_000_000)}\n`));
    expect(bytes.length).toBeLessThan(4 * 1024); // deflate makes a million "<" about a kilobyte
    const r = await refusal(bytes);
    expect(r.detail).toContain("METADATA's Requires-Python is 1000000 characters long; this index accepts at most 256");
    expect(r.detail.length).toBeLessThan(1000);
    expect(r.errors).toEqual([{ source: `${DIST_INFO}/METADATA`, message: expect.stringContaining('Requires-Python') }]);
  });

  it('the same in an sdist PKG-INFO', async () => {
    const r = await refusal(
      await sdistWith(metadata('demo-pkg', '1.0.0', `Requires-Python: >=3.8,${'<'.repeat(300)}\n`)),
      'demo_pkg-1.0.0.tar.gz',
    );
    expect(r.detail).toContain("PKG-INFO's Requires-Python is 306 characters long");
  });

  it.each([
    ['a value that is not a specifier', 'python3', /"python3" does not start with a comparison operator/],
    [
      'a legacy wildcard with >= (packaging 22+ refuses it)',
      '>=3.6.*',
      /">=3\.6\.\*" uses a \.\* prefix match, which only == and != allow/,
    ],
    ['~= with one segment', '~=3', /single release segment/],
    ['a short run of "<"', '<<<<', /"<<<<" has "<<<", which is not a PEP 440 version/],
    ['an environment marker', '>=3.8; python_version < "4"', /not a PEP 440 version/],
  ])('%s is refused, naming the field and the clause', async (_what, value, reason) => {
    const r = await refusal(await wheelWith(metadata('demo-pkg', '1.0.0', `Requires-Python: ${value}\n`)));
    expect(r.detail).toContain(`METADATA's Requires-Python ${JSON.stringify(value)} is not a PEP 440 version specifier set`);
    expect(r.detail).toMatch(reason);
  });

  it('valid values are kept as written; an empty one is no field', async () => {
    for (const value of ['>=3.7', '>=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*', '<3.14,>=3.7', '~=3.10', '>=3.8,']) {
      const result = await validator.validate(
        artifact(await wheelWith(metadata('demo-pkg', '1.0.0', `Requires-Python: ${value}\n`)), WHEEL_NAME),
      );
      expect(result.ok, `${value}: ${JSON.stringify(result)}`).toBe(true);
      if (result.ok) expect(result.requiresPython).toBe(value);
    }
    const empty = await validator.validate(artifact(await wheelWith(metadata('demo-pkg', '1.0.0', 'Requires-Python: \n')), WHEEL_NAME));
    expect(empty.ok).toBe(true);
    if (empty.ok) expect(empty.requiresPython).toBeUndefined();
  });

  it('the bound is an option', async () => {
    const strict = new DistributionValidator({ maxRequiresPythonLength: 4 });
    const r = await refusal(await wheelWith(metadata('demo-pkg', '1.0.0', 'Requires-Python: >=3.7\n')), WHEEL_NAME, strict);
    expect(r.detail).toContain('is 5 characters long; this index accepts at most 4');
    expect(DEFAULT_LIMITS.maxRequiresPythonLength).toBe(256);
  });
});

describe('Name, Version and Metadata-Version are bounded before they are parsed', () => {
  it.each([
    ['Name', `Metadata-Version: 2.1\nName: ${'a'.repeat(300)}\nVersion: 1.0.0\n\n`],
    // PEP 440-equal to 1.0.0 however long: only the bound stops it.
    ['Version', `Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1${'.0'.repeat(200)}\n\n`],
    ['Metadata-Version', `Metadata-Version: 2.${'1'.repeat(300)}\nName: demo-pkg\nVersion: 1.0.0\n\n`],
  ])('a %s over 255 characters is refused, naming the field', async (field, meta) => {
    const r = await refusal(await wheelWith(meta));
    expect(r.detail).toMatch(new RegExp(`METADATA's ${field} is \\d+ characters long; this index accepts at most 255`));
    expect(r.detail.length).toBeLessThan(1000);
  });
});
