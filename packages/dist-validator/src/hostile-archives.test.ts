/**
 * Issue #21: "What the index validates is not what pip installs" (zip and tar parser differentials)
 * and unchecked sdist members. Every hostile archive of test-support.ts is refused by the check it
 * fails; where Python is available the tests show that Python's zipfile and tarfile (which pip and
 * build backends use) really read these archives differently from the libraries the index reads
 * them with; and archives written by other tools with the features these checks must allow (ZIP64,
 * data descriptors, comments, pax and GNU long names, links inside the sdist) still pass.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { crc32, gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { createDistributionValidator } from './index.js';
import {
  artifact,
  buildTar,
  buildTarGz,
  concatenatedWheel,
  DIST_INFO,
  HOSTILE_SDISTS,
  HOSTILE_WHEELS,
  metadata,
  rawZip,
  WHEEL_FILE,
  wheelEntries,
  type HostileCase,
} from './test-support.js';

const PYTHON = '/usr/bin/python3';
const HAVE_PYTHON = existsSync(PYTHON);
const validator = createDistributionValidator();
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const SDIST = 'demo_pkg-1.0.0.tar.gz';
const TOP = 'demo_pkg-1.0.0';

/** Runs a Python script with `bytes` on stdin; returns what it prints. */
const python = (script: string, bytes: Buffer) =>
  execFileSync(PYTHON, ['-c', script], { input: bytes, env: { PATH: '/usr/bin:/bin' } }).toString();

async function expectRefused(c: HostileCase) {
  const result = await validator.validate(artifact(await c.build(), c.filename));
  expect(result.ok, JSON.stringify(result)).toBe(false);
  if (result.ok) return;
  expect(result.detail).toContain(c.message);
  expect(result.errors).toHaveLength(1);
  expect(result.errors[0]!.message.length).toBeGreaterThan(0);
}

async function expectAccepted(bytes: Buffer, filename: string) {
  const result = await validator.validate(artifact(bytes, filename));
  expect(result.ok, JSON.stringify(result)).toBe(true);
  return result;
}

describe('hostile wheels are refused, each by the check it fails', () => {
  for (const c of HOSTILE_WHEELS) it(c.name, () => expectRefused(c));
});

describe('hostile sdists are refused, each by the check it fails (PyPA "Source distribution archive features")', () => {
  for (const c of HOSTILE_SDISTS) it(c.name, () => expectRefused(c));
});

/** The entry names as yauzl gives them with its defaults. */
function yauzlNames(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, (err, zip) => {
      if (err) return reject(err);
      const names: string[] = [];
      zip.on('entry', (entry: yauzl.Entry) => names.push(entry.fileName));
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
    });
  });
}

/** yauzl's own reading (the library the index uses), with its defaults. */
function yauzlRead(bytes: Buffer, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
        });
      });
      zip.on('end', () => reject(new Error(`${name} not found`)));
      zip.readEntry();
    });
  });
}

describe('the attacks are real: the readers differ on these archives', () => {
  it('a concatenated wheel: yauzl reads the first zip, so the index served its METADATA', async () => {
    const bytes = concatenatedWheel();
    expect(await yauzlRead(bytes, `${DIST_INFO}/METADATA`)).toContain('Requires-Dist: goodlib');
    expect(await yauzlRead(bytes, 'demo_pkg/__init__.py')).toBe("x = 'good'\n");
  });
  it.skipIf(!HAVE_PYTHON)("a concatenated wheel: Python's zipfile (pip) reads the second zip, other code and other dependencies", () => {
    const out = python(
      [
        'import io, sys, zipfile',
        'z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))',
        `print(z.read('${DIST_INFO}/METADATA').decode())`,
        "print(z.read('demo_pkg/__init__.py').decode())",
      ].join('\n'),
      concatenatedWheel(),
    );
    expect(out).toContain('Requires-Dist: evillib');
    expect(out).toContain("x = 'evil'");
    expect(out).not.toContain('goodlib');
  });
  it.skipIf(!HAVE_PYTHON)('an Info-ZIP Unicode Path field: yauzl renames the entry, this Python does not', async () => {
    const c = HOSTILE_WHEELS.find((h) => h.name.startsWith('an Info-ZIP Unicode Path'))!;
    const bytes = await c.build();
    const names = python('import io, sys, zipfile\nprint(zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read())).namelist())', bytes);
    expect(names).toContain("'demo_pkg/a.py'");
    expect((await yauzlNames(bytes)).filter((n) => n === `${DIST_INFO}/METADATA`)).toHaveLength(2);
  });
  it.skipIf(!HAVE_PYTHON)("a NUL in a name: Python's zipfile cuts the name there", async () => {
    const bytes = await HOSTILE_WHEELS.find((h) => h.name.startsWith('a NUL'))!.build();
    expect(python('import io, sys, zipfile\nprint(zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read())).namelist())', bytes)).toContain(
      "'demo_pkg/a.py'",
    );
  });
  it.skipIf(!HAVE_PYTHON)("two PKG-INFO: Python's tarfile reads the last one", async () => {
    const bytes = await HOSTILE_SDISTS.find((h) => h.name.startsWith('two PKG-INFO'))!.build();
    const out = python(
      `import io, sys, tarfile\nt = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode='r:gz')\nprint(t.extractfile('${TOP}/PKG-INFO').read().decode())`,
      bytes,
    );
    expect(out).toContain('Requires-Dist: evillib');
  });
  it.skipIf(!HAVE_PYTHON)("concatenated tars: Python's tarfile stops at the first end-of-archive blocks, tar-stream reads on", async () => {
    const bytes = await HOSTILE_SDISTS.find((h) => h.name.startsWith('a second tar'))!.build();
    const names = python(
      "import io, sys, tarfile\nprint(tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode='r:gz').getnames())",
      bytes,
    );
    expect(names.trim()).toBe(`['${TOP}/PKG-INFO']`);
    const seen: string[] = [];
    const extract = tar.extract();
    Readable.from([gunzipSync(bytes)]).pipe(extract);
    for await (const entry of extract) {
      seen.push(entry.header.name);
      entry.resume();
    }
    expect(seen).toEqual([`${TOP}/PKG-INFO`, `${TOP}/evil.py`]);
  });
});

describe('zip features real wheels use still pass', () => {
  it('the raw writer of the hostile cases writes a valid wheel when nothing lies', () => expectAccepted(rawZip(wheelEntries()), WHEEL));
  it('data descriptors, with and without their signature', async () => {
    await expectAccepted(rawZip(wheelEntries().map((e) => ({ ...e, descriptor: true }))), WHEEL);
    const unsigned = wheelEntries().map((e) => {
      const d = Buffer.alloc(12);
      const data = Buffer.from(e.data ?? '');
      d.writeUInt32LE(crc32(data), 0);
      d.writeUInt32LE(data.length, 4);
      d.writeUInt32LE(data.length, 8);
      return { ...e, descriptor: d };
    });
    await expectAccepted(rawZip(unsigned), WHEEL);
  });
  it('ZIP64 end records, and a zip comment', async () => {
    await expectAccepted(rawZip(wheelEntries(), { zip64: {} }), WHEEL);
    await expectAccepted(rawZip(wheelEntries(), { comment: 'built by hand' }), WHEEL);
  });
  it('yazl with forced ZIP64 and streamed members (ZIP64 data descriptors)', async () => {
    const zip = new yazl.ZipFile();
    zip.addReadStream(Readable.from([Buffer.from('x = 1\n')]), 'demo_pkg/__init__.py', { forceZip64Format: true });
    zip.addBuffer(Buffer.from(metadata('demo-pkg', '1.0.0')), `${DIST_INFO}/METADATA`, { forceZip64Format: true });
    zip.addReadStream(Readable.from([Buffer.from(WHEEL_FILE)]), `${DIST_INFO}/WHEEL`, { compress: true });
    zip.end({ forceZip64Format: true, comment: '' });
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    await expectAccepted(Buffer.concat(chunks), WHEEL);
  });
  it.skipIf(!HAVE_PYTHON)("Python's zipfile: ZIP64 extra fields and end records, and data descriptors when writing to a pipe", async () => {
    const write = (target: string) =>
      execFileSync(PYTHON, [
        '-c',
        [
          'import io, sys, zipfile',
          'zipfile.ZIP64_LIMIT = 64  # every member and the directory past it: ZIP64 everywhere',
          'class Pipe(io.RawIOBase):',
          '    def __init__(self): self.b = bytearray()',
          '    def writable(self): return True',
          '    def write(self, d): self.b += d; return len(d)',
          `out = ${target}`,
          "with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:",
          "    z.writestr('demo_pkg/__init__.py', 'x = 1\\n' * 20)",
          `    z.writestr('${DIST_INFO}/METADATA', ${JSON.stringify(metadata('demo-pkg', '1.0.0'))})`,
          `    z.writestr('${DIST_INFO}/WHEEL', ${JSON.stringify(WHEEL_FILE)})`,
          "sys.stdout.buffer.write(out.getvalue() if hasattr(out, 'getvalue') else bytes(out.b))",
        ].join('\n'),
      ]);
    const seekable = write('io.BytesIO()');
    expect(seekable.readUInt32LE(seekable.length - 22 - 20)).toBe(0x07064b50); // a ZIP64 locator
    await expectAccepted(seekable, WHEEL);
    const piped = write('Pipe()');
    expect(piped.readUInt16LE(6) & 0x08).toBe(0x08); // a data descriptor
    await expectAccepted(piped, WHEEL);
  });
});

describe('tar features real sdists use still pass', () => {
  const pkgInfo = { name: `${TOP}/PKG-INFO`, data: metadata('demo-pkg', '1.0.0') };
  it('symlinks that stay inside (through ".."), a hard link to an earlier file, a "./" root and repeated directories', async () => {
    const bytes = await buildTarGz([
      { name: './', type: 'directory' },
      { name: `./${TOP}/`, type: 'directory' },
      { name: `./${TOP}/README.md`, data: 'readme' },
      { name: `./${TOP}/docs/`, type: 'directory' },
      { name: `./${TOP}/docs/README.md`, type: 'symlink', linkname: '../README.md' },
      { name: `./${TOP}/docs/here`, type: 'symlink', linkname: '.' },
      { name: `./${TOP}/docs/up`, type: 'symlink', linkname: '..' },
      { name: `./${TOP}/README.copy`, type: 'link', linkname: `./${TOP}/README.md` },
      { name: `./${TOP}/docs/`, type: 'directory' },
      { ...pkgInfo, name: `./${pkgInfo.name}` },
    ]);
    await expectAccepted(bytes, SDIST);
  });
  it('PKG-INFO first or last, and end-of-archive padding to a 10 KiB record', async () => {
    await expectAccepted(await buildTarGz([pkgInfo, { name: `${TOP}/a.py`, data: 'x' }]), SDIST);
    const tarBytes = await buildTar([{ name: `${TOP}/a.py`, data: 'x' }, pkgInfo]);
    await expectAccepted(gzipSync(Buffer.concat([tarBytes, Buffer.alloc(10240 - (tarBytes.length % 10240))])), SDIST);
  });
  it.skipIf(!HAVE_PYTHON)("Python's tarfile: pax (long names, a global header as git archive writes) and GNU long names", async () => {
    for (const format of ['PAX_FORMAT', 'GNU_FORMAT']) {
      const bytes = execFileSync(PYTHON, [
        '-c',
        [
          'import io, sys, tarfile',
          'b = io.BytesIO()',
          'def add(t, name, data):',
          '    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))',
          `with tarfile.open(fileobj=b, mode='w:gz', format=tarfile.${format}, pax_headers={'comment': 'abc123'} if '${format}' == 'PAX_FORMAT' else None) as t:`,
          `    add(t, '${TOP}/' + 'long/' * 40 + 'file.py', b'x = 1\\n')`,
          `    add(t, '${TOP}/PKG-INFO', ${JSON.stringify(metadata('demo-pkg', '1.0.0'))}.encode())`,
          'sys.stdout.buffer.write(b.getvalue())',
        ].join('\n'),
      ]);
      await expectAccepted(bytes, SDIST);
    }
  });
});
