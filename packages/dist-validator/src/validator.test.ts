import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDistributionValidator, DistributionValidator, parseMetadataHeaders } from './index.js';
import { artifact, buildTarGz, buildZip, metadata, WHEEL_FILE } from './test-support.js';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const fixture = (path: string) => readFileSync(new URL(path, FIXTURES));
const validator = createDistributionValidator();
const PYTHON = '/usr/bin/python3';
const HAVE_PYTHON = existsSync(PYTHON);

async function expectFailure(result: Awaited<ReturnType<typeof validator.validate>>, message: string | RegExp) {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  if (result.ok) return;
  if (typeof message === 'string') expect(result.detail).toContain(message);
  else expect(result.detail).toMatch(message);
  expect(result.errors.length).toBeGreaterThan(0);
  for (const e of result.errors) {
    expect(typeof e.source).toBe('string');
    expect(e.message.length).toBeGreaterThan(0);
  }
}

const wheel = (dir: string, meta: string, extra: { name: string; data: string | Buffer; compress?: boolean }[] = []) =>
  buildZip([
    { name: 'demo_pkg/__init__.py', data: 'x = 1\n' },
    ...extra,
    { name: `${dir}/METADATA`, data: meta },
    { name: `${dir}/WHEEL`, data: WHEEL_FILE },
  ]);

describe('fixtures: every real wheel and sdist is accepted (PyPA binary and source distribution formats)', () => {
  const cases: [string, string, string][] = [
    ['dist/demo_pkg-1.0.0-py3-none-any.whl', 'demo-pkg', '1.0.0'],
    ['dist/demo_pkg-1.0.0.tar.gz', 'demo-pkg', '1.0.0'],
    ['dist/demo_pkg-1.0.1-py3-none-any.whl', 'demo-pkg', '1.0.1'],
    ['dist/demo_pkg-1.0.1.tar.gz', 'demo-pkg', '1.0.1'],
    ['dist/demo_pkg_extra-0.1.0-py3-none-any.whl', 'demo-pkg-extra', '0.1.0'],
    ['dist/demo_pkg_extra-0.1.0.tar.gz', 'demo-pkg-extra', '0.1.0'],
    // Legacy names (setuptools 66): the dot and the capitals stay in file and directory names.
    ['dist-legacy/Demo.Pkg_Extra-0.0.1-py3-none-any.whl', 'demo-pkg-extra', '0.0.1'],
    ['dist-legacy/Demo.Pkg_Extra-0.0.1.tar.gz', 'demo-pkg-extra', '0.0.1'],
  ];
  for (const [path, project, version] of cases) {
    it(`${path} matches ${project} ${version}`, async () => {
      const result = await validator.validate(artifact(fixture(path), path.split('/')[1]!, project, version));
      expect(result.ok, JSON.stringify(result)).toBe(true);
      if (!result.ok) return;
      expect(result.requiresPython).toBe('>=3.7');
      const text = Buffer.from(result.coreMetadata!).toString('utf8');
      expect(text).toMatch(/^Metadata-Version: 2\.1\n/);
      expect(text).toContain(`Version: ${version}\n`);
    });
  }
  it('the wheel METADATA is returned byte for byte (PEP 658: the served file is the one in the wheel)', async () => {
    const bytes = fixture('dist/demo_pkg-1.0.0-py3-none-any.whl');
    const result = await validator.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl'));
    if (!result.ok) throw new Error(result.detail);
    const meta = Buffer.from(result.coreMetadata!);
    expect(meta.length).toBe(403); // `unzip -l` lists METADATA with 403 bytes
    expect(meta.toString()).toContain('Name: demo-pkg\n');
  });
  it('PEP 440 equality and name normalization: a session for "Demo_Pkg" "1.0" accepts demo-pkg 1.0.0', async () => {
    const result = await validator.validate(
      artifact(fixture('dist/demo_pkg-1.0.0-py3-none-any.whl'), 'demo_pkg-1.0.0-py3-none-any.whl', 'Demo_Pkg', '1.0'),
    );
    expect(result.ok).toBe(true);
  });
});

describe('wheels that do not match the session or are broken', () => {
  it('a renamed wheel: demo_pkg 1.0.0 bytes uploaded as 1.0.1', async () => {
    const bytes = fixture('dist/demo_pkg-1.0.0-py3-none-any.whl');
    const result = await validator.validate(artifact(bytes, 'demo_pkg-1.0.1-py3-none-any.whl', 'demo-pkg', '1.0.1'));
    await expectFailure(result, `the wheel's .dist-info directory is "demo_pkg-1.0.0.dist-info"`);
  });
  it('METADATA whose Name disagrees', async () => {
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', metadata('other', '1.0.0'));
    const result = await validator.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl'));
    await expectFailure(result, 'METADATA says Name "other", the session is for "demo-pkg"');
    if (!result.ok) {
      expect(result.detail).toBe(
        'demo_pkg-1.0.0-py3-none-any.whl is not a valid wheel of demo-pkg 1.0.0: METADATA says Name "other", the session is for "demo-pkg".',
      );
      expect(result.errors).toEqual([
        { source: 'demo_pkg-1.0.0.dist-info/METADATA', message: 'METADATA says Name "other", the session is for "demo-pkg"' },
      ]);
    }
  });
  it('METADATA whose Version disagrees, and both at once', async () => {
    const v = await validator.validate(
      artifact(await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '2.0')), 'demo_pkg-1.0.0-py3-none-any.whl'),
    );
    await expectFailure(v, 'METADATA says Version "2.0", the session is for "1.0.0"');
    const both = await validator.validate(
      artifact(await wheel('demo_pkg-1.0.0.dist-info', metadata('x', '2.0')), 'demo_pkg-1.0.0-py3-none-any.whl'),
    );
    if (both.ok) throw new Error('accepted');
    expect(both.errors).toHaveLength(2);
  });
  it('METADATA without Name, Version or Metadata-Version, or with Name twice', async () => {
    const file = 'demo_pkg-1.0.0-py3-none-any.whl';
    await expectFailure(
      await validator.validate(artifact(await wheel('demo_pkg-1.0.0.dist-info', 'Metadata-Version: 2.1\nVersion: 1.0.0\n'), file)),
      'METADATA has no Name field',
    );
    await expectFailure(
      await validator.validate(artifact(await wheel('demo_pkg-1.0.0.dist-info', 'Metadata-Version: 2.1\nName: demo-pkg\n'), file)),
      'METADATA has no Version field',
    );
    await expectFailure(
      await validator.validate(artifact(await wheel('demo_pkg-1.0.0.dist-info', 'Name: demo-pkg\nVersion: 1.0.0\n'), file)),
      'METADATA has no Metadata-Version field',
    );
    await expectFailure(
      await validator.validate(
        artifact(await wheel('demo_pkg-1.0.0.dist-info', 'Metadata-Version: 2.1\nName: demo-pkg\nName: other\nVersion: 1.0.0\n'), file),
      ),
      'METADATA has 2 Name fields',
    );
  });
  it('a truncated zip', async () => {
    const bytes = fixture('dist/demo_pkg-1.0.0-py3-none-any.whl');
    for (const cut of [bytes.length - 10, Math.floor(bytes.length / 2), 10, 0]) {
      const result = await validator.validate(artifact(bytes.subarray(0, cut), 'demo_pkg-1.0.0-py3-none-any.whl'));
      await expectFailure(result, 'the wheel is not a readable zip archive');
    }
  });
  it('bytes that are not a zip at all', async () => {
    await expectFailure(
      await validator.validate(artifact(randomBytes(5000), 'demo_pkg-1.0.0-py3-none-any.whl')),
      /not a readable zip archive: it has no end of central directory record/,
    );
  });
  it('no .dist-info directory, two of them, no METADATA, no WHEEL', async () => {
    const file = 'demo_pkg-1.0.0-py3-none-any.whl';
    await expectFailure(
      await validator.validate(artifact(await buildZip([{ name: 'demo_pkg/__init__.py', data: '' }]), file)),
      'the wheel has no top-level .dist-info directory',
    );
    const two = await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '1.0.0'), [
      { name: 'other-1.0.dist-info/METADATA', data: metadata('other', '1.0') },
    ]);
    await expectFailure(await validator.validate(artifact(two, file)), 'the wheel has 2 top-level .dist-info directories');
    const noMeta = await buildZip([{ name: 'demo_pkg-1.0.0.dist-info/WHEEL', data: WHEEL_FILE }]);
    await expectFailure(await validator.validate(artifact(noMeta, file)), 'the wheel has no demo_pkg-1.0.0.dist-info/METADATA');
    const noWheel = await buildZip([{ name: 'demo_pkg-1.0.0.dist-info/METADATA', data: metadata('demo-pkg', '1.0.0') }]);
    await expectFailure(
      await validator.validate(artifact(noWheel, file)),
      'the wheel must have exactly one demo_pkg-1.0.0.dist-info/WHEEL',
    );
  });
  it('a member path that escapes the archive (../) is refused', async () => {
    // yazl refuses to write such a name, so write a same-length one and patch it in place.
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '1.0.0'), [{ name: 'zz/evil.py', data: 'x' }]);
    for (let i = bytes.indexOf('zz/evil.py'); i >= 0; i = bytes.indexOf('zz/evil.py', i)) bytes.write('../evil.py', i);
    await expectFailure(
      await validator.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl')),
      'the wheel entry "../evil.py" has a ".." component',
    );
  });
  it('a METADATA whose bytes do not match its CRC-32', async () => {
    const meta = metadata('demo-pkg', '1.0.0');
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', meta, []);
    // Rebuild with METADATA stored (not deflated) so its bytes can be flipped in place.
    const stored = await buildZip([
      { name: 'demo_pkg-1.0.0.dist-info/METADATA', data: meta, compress: false },
      { name: 'demo_pkg-1.0.0.dist-info/WHEEL', data: WHEEL_FILE },
    ]);
    expect(bytes.length).toBeGreaterThan(0);
    const at = stored.indexOf('Description body');
    stored[at] = 'd'.charCodeAt(0);
    await expectFailure(await validator.validate(artifact(stored, 'demo_pkg-1.0.0-py3-none-any.whl')), 'does not match its CRC-32');
  });
  it('METADATA that is not UTF-8', async () => {
    const bytes = await wheel(
      'demo_pkg-1.0.0.dist-info',
      Buffer.from('Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\nSummary: \xff\xfe\n', 'latin1') as unknown as string,
    );
    await expectFailure(await validator.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl')), 'METADATA is not valid UTF-8');
  });
});

describe('archive bombs are bounded', () => {
  it('a METADATA that inflates to 100 MiB of zeros is refused from its declared size', async () => {
    const bomb = Buffer.alloc(100 * 1024 * 1024);
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', bomb as unknown as string);
    expect(bytes.length).toBeLessThan(200 * 1024); // deflate: ~1000:1
    const a = artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl');
    await expectFailure(
      await validator.validate(a),
      'demo_pkg-1.0.0.dist-info/METADATA declares 104857600 bytes; this index accepts core metadata up to 1048576 bytes',
    );
  });
  it('a METADATA that lies about its size is cut off at the declared size, whatever it inflates to', async () => {
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', Buffer.alloc(20 * 1024 * 1024) as unknown as string);
    // Make the central directory record and the local header of METADATA both declare 400 bytes
    // (uncompressed size: offset 24 in the record, 22 in the local header), a consistent lie.
    const name = Buffer.from('demo_pkg-1.0.0.dist-info/METADATA');
    let patched = 0;
    for (const [sig, field, nameAt, lengthAt] of [
      [0x02014b50, 24, 46, 28],
      [0x04034b50, 22, 30, 26],
    ] as const) {
      const signature = Buffer.alloc(4);
      signature.writeUInt32LE(sig);
      for (let i = bytes.indexOf(signature); i >= 0; i = bytes.indexOf(signature, i + 4)) {
        const len = bytes.readUInt16LE(i + lengthAt);
        if (bytes.subarray(i + nameAt, i + nameAt + len).equals(name)) {
          bytes.writeUInt32LE(400, i + field);
          patched++;
        }
      }
    }
    expect(patched).toBe(2);
    await expectFailure(
      await validator.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl')),
      /METADATA cannot be read: too many bytes in the stream/,
    );
  });
  it('the real inflated size is checked too: a limit below the declared size still stops at the limit', async () => {
    const small = new DistributionValidator({ maxMetadataBytes: 50 });
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '1.0.0'));
    await expectFailure(await small.validate(artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl')), 'declares');
  });
  it('a wheel with more entries than the limit is refused before its directory is read', async () => {
    const members = Array.from({ length: 1000 }, (_, i) => ({ name: `demo_pkg/m${i}`, data: '', compress: false }));
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '1.0.0'), members);
    const a = artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl');
    await expectFailure(
      await new DistributionValidator({ maxEntries: 1000 }).validate(a),
      'the wheel has 1003 entries; this index accepts at most 1000',
    );
    expect(a.bytesRead()).toBeLessThan(100 * 1024); // only the end of central directory record
  });
  // yazl slows down quadratically past ~10k entries; Python's zipfile writes 200k (zip64) in 2 s.
  it.skipIf(!HAVE_PYTHON)(
    'a wheel with 200,000 entries (zip64, written by Python zipfile) is refused under the default limit',
    async () => {
      const script = [
        'import io, sys, zipfile',
        'b = io.BytesIO()',
        "with zipfile.ZipFile(b, 'w') as z:",
        "    for i in range(200000): z.writestr(f'demo_pkg/m{i}', b'')",
        "    z.writestr('demo_pkg-1.0.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: demo-pkg\\nVersion: 1.0.0\\n')",
        'sys.stdout.buffer.write(b.getvalue())',
      ].join('\n');
      const bytes = execFileSync(PYTHON, ['-c', script], { maxBuffer: 64 * 1024 * 1024 });
      const a = artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl');
      await expectFailure(await validator.validate(a), 'the wheel has 200001 entries; this index accepts at most 100000');
      expect(a.bytesRead()).toBeLessThan(1024 * 1024);
    },
  );
  it('a large wheel is read through random access: the central directory and METADATA, not the file', async () => {
    const payload = randomBytes(40 * 1024 * 1024);
    const bytes = await wheel('demo_pkg-1.0.0.dist-info', metadata('demo-pkg', '1.0.0'), [
      { name: 'demo_pkg/blob.bin', data: payload, compress: false },
    ]);
    const a = artifact(bytes, 'demo_pkg-1.0.0-py3-none-any.whl');
    const result = await validator.validate(a);
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect(a.bytesRead()).toBeLessThan(3 * 1024 * 1024);
  });
});

describe('sdists that do not match the session or are broken', () => {
  const file = 'demo_pkg-1.0.0.tar.gz';
  it('an sdist without PKG-INFO', async () => {
    const bytes = await buildTarGz([
      { name: 'demo_pkg-1.0.0/pyproject.toml', data: '[project]\n' },
      { name: 'demo_pkg-1.0.0/src/demo_pkg/PKG-INFO', data: metadata('demo-pkg', '1.0.0') },
    ]);
    await expectFailure(
      await validator.validate(artifact(bytes, file)),
      'the sdist has no PKG-INFO in a top-level {name}-{version}/ directory (read 2 members)',
    );
  });
  it('PKG-INFO whose Name or Version disagrees', async () => {
    const bytes = await buildTarGz([{ name: 'demo_pkg-1.0.0/PKG-INFO', data: metadata('other', '1.0.0') }]);
    await expectFailure(await validator.validate(artifact(bytes, file)), 'PKG-INFO says Name "other", the session is for "demo-pkg"');
    const v = await buildTarGz([{ name: 'demo_pkg-1.0.0/PKG-INFO', data: metadata('demo-pkg', '1.0.1') }]);
    await expectFailure(await validator.validate(artifact(v, file)), 'PKG-INFO says Version "1.0.1", the session is for "1.0.0"');
  });
  it('the top-level directory names another release', async () => {
    const bytes = await buildTarGz([{ name: 'other-1.0.0/PKG-INFO', data: metadata('demo-pkg', '1.0.0') }]);
    await expectFailure(await validator.validate(artifact(bytes, file)), `the sdist's top-level directory is "other-1.0.0"`);
  });
  it('legacy spellings pass: "./" prefixes and a dashed top-level directory (demo-pkg-1.0.0/)', async () => {
    const bytes = await buildTarGz([
      { name: 'demo-pkg-1.0.0/', type: 'directory' },
      { name: './demo-pkg-1.0.0/PKG-INFO', data: metadata('Demo_Pkg', '1.0') },
    ]);
    const result = await validator.validate(artifact(bytes, 'demo-pkg-1.0.0.tar.gz'));
    expect(result.ok, JSON.stringify(result)).toBe(true);
  });
  it('PKG-INFO that is a symlink', async () => {
    const bytes = await buildTarGz([{ name: 'demo_pkg-1.0.0/PKG-INFO', type: 'symlink', linkname: '/etc/passwd' }]);
    await expectFailure(await validator.validate(artifact(bytes, file)), 'demo_pkg-1.0.0/PKG-INFO is a symlink entry, not a regular file');
  });
  it('a truncated .tar.gz, a plain tar, and random bytes', async () => {
    const bytes = fixture('dist/demo_pkg-1.0.0.tar.gz');
    await expectFailure(
      await validator.validate(artifact(bytes.subarray(0, bytes.length - 100), file)),
      'the sdist is not a readable .tar.gz archive: unexpected end of file',
    );
    await expectFailure(
      await validator.validate(artifact(randomBytes(3000), file)),
      'the sdist is not a readable .tar.gz archive: incorrect header check',
    );
    const { gunzipSync } = await import('node:zlib');
    await expectFailure(await validator.validate(artifact(gunzipSync(bytes), file)), 'the sdist is not a readable .tar.gz archive');
  });
  it('a gzip bomb stops at the decompressed-bytes limits: the ratio to the compressed size, and the absolute cap', async () => {
    const bomb = await buildTarGz([
      { name: 'demo_pkg-1.0.0/zeros', data: Buffer.alloc(64 * 1024 * 1024) },
      { name: 'demo_pkg-1.0.0/PKG-INFO', data: metadata('demo-pkg', '1.0.0') },
    ]);
    expect(bomb.length).toBeLessThan(256 * 1024);
    // Default: at most 100 times its size, but at least 32 MiB; this one inflates about 1,000 times.
    await expectFailure(
      await validator.validate(artifact(bomb, file)),
      `the sdist decompresses to more than 33554432 bytes; this index decompresses at most 100 times an sdist's size (${bomb.length} bytes here), or 33554432 bytes if that is more (gzip bomb check)`,
    );
    const absolute = new DistributionValidator({ maxSdistScanBytes: 8 * 1024 * 1024 });
    await expectFailure(
      await absolute.validate(artifact(bomb, file)),
      'the sdist decompresses to more than 8388608 bytes; this index decompresses at most 8388608 bytes of an sdist (gzip bomb check)',
    );
    // With a ratio allowance above its own, the same archive is fine.
    expect((await new DistributionValidator({ maxSdistRatio: 2000 }).validate(artifact(bomb, file))).ok).toBe(true);
  });
  it('too many members, and a PKG-INFO over the size limit', async () => {
    const many = await buildTarGz([
      ...Array.from({ length: 50 }, (_, i) => ({ name: `demo_pkg-1.0.0/f${i}`, data: '' })),
      { name: 'demo_pkg-1.0.0/PKG-INFO', data: metadata('demo-pkg', '1.0.0') },
    ]);
    await expectFailure(
      await new DistributionValidator({ maxEntries: 20 }).validate(artifact(many, file)),
      'the sdist has more than 20 members; this index reads at most 20',
    );
    const big = metadata('demo-pkg', '1.0.0') + 'x'.repeat(2 * 1024 * 1024);
    const huge = await buildTarGz([{ name: 'demo_pkg-1.0.0/PKG-INFO', data: big }]);
    await expectFailure(
      await validator.validate(artifact(huge, file)),
      `demo_pkg-1.0.0/PKG-INFO is ${big.length} bytes; this index accepts core metadata up to 1048576 bytes`,
    );
  });
});

describe('never throws', () => {
  it('a read that fails becomes { ok: false }', async () => {
    const broken = {
      project: 'demo-pkg',
      version: '1.0.0',
      filename: 'demo_pkg-1.0.0.tar.gz',
      size: 10,
      read: () => Promise.reject(new Error('disk on fire')),
    };
    await expectFailure(await validator.validate(broken), 'the archive could not be read: disk on fire');
    await expectFailure(await validator.validate({ ...broken, filename: 'demo_pkg-1.0.0-py3-none-any.whl' }), 'disk on fire');
    await expectFailure(
      await validator.validate({ ...broken, filename: 'demo_pkg-1.0.0.zip' }),
      'only wheels (.whl) and sdists (.tar.gz) can be validated',
    );
  });
});

describe('core metadata headers (email header format)', () => {
  const parse = (s: string) => {
    const r = parseMetadataHeaders(Buffer.from(s), 'METADATA');
    if (!r.ok) throw new Error(r.message);
    return r.headers;
  };
  it('continuation lines, CRLF, case-insensitive names, multiple-use fields, and the body after the first blank line', () => {
    const h = parse(
      'Metadata-Version: 2.1\r\nname:  demo-pkg \r\nSummary: one\r\n  two\r\nClassifier: A\r\nClassifier: B\r\n\r\nName: body-is-not-a-header\r\n',
    );
    expect(h.get('name')).toEqual(['demo-pkg']);
    expect(h.get('summary')).toEqual(['one  two']);
    expect(h.get('classifier')).toEqual(['A', 'B']);
  });
  it('a line that is not a header ends the headers, as email.parser does', () => {
    const h = parse('Metadata-Version: 2.1\nName: a\nnot a header\nVersion: 1\n');
    expect(h.get('version')).toBeUndefined();
  });
});
