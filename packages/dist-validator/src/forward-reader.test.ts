/**
 * The local-header walk reads each run of closely packed members through one stream
 * (forward-reader.ts): few reads of the artifact for a wheel of many members, and a large member's
 * data between two runs still unread.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ForwardReader, RUN_GAP } from './forward-reader.js';
import { createDistributionValidator } from './index.js';
import { artifact, buildZip, metadata, WHEEL_FILE } from './test-support.js';

const DIR = 'demo_pkg-1.0.0.dist-info';
const WHEEL_NAME = 'demo_pkg-1.0.0-py3-none-any.whl';
const tail = [
  { name: `${DIR}/METADATA`, data: metadata('demo-pkg', '1.0.0') },
  { name: `${DIR}/WHEEL`, data: WHEEL_FILE },
  { name: `${DIR}/RECORD`, data: '' },
];

describe('the local headers of a wheel', () => {
  it('of 300 members of 16 KiB are checked through a handful of reads, not one per 64 KiB', async () => {
    const members = Array.from({ length: 300 }, (_, i) => ({ name: `demo_pkg/m${i}.py`, data: randomBytes(16 * 1024), compress: false }));
    const a = artifact(await buildZip([...members, ...tail]), WHEEL_NAME);
    const result = await createDistributionValidator().validate(a);
    expect(result.ok).toBe(true);
    // The end records, the central directory, one run of local headers, METADATA (75 with 64 KiB windows).
    expect(a.reads()).toBeLessThanOrEqual(6);
  });

  it("past a member larger than the run gap are read by a stream of their own, the member's data skipped", async () => {
    const small = (from: number) =>
      Array.from({ length: 20 }, (_, i) => ({ name: `demo_pkg/m${from + i}.py`, data: randomBytes(4096), compress: false }));
    const large = { name: 'demo_pkg/lib.so', data: randomBytes(4 * RUN_GAP), compress: false };
    const bytes = await buildZip([...small(0), large, ...small(20), ...tail]);
    const a = artifact(bytes, WHEEL_NAME);
    const result = await createDistributionValidator().validate(a);
    expect(result.ok).toBe(true);
    expect(a.bytesRead()).toBeLessThan(RUN_GAP);
  });

  it('a problem in a local header is still found (the name it gives differs from the directory)', async () => {
    const members = Array.from({ length: 50 }, (_, i) => ({ name: `demo_pkg/m${i}.py`, data: randomBytes(8192), compress: false }));
    const bytes = await buildZip([...members, ...tail]);
    // The 41st member's local header names another file ('n' for 'm'); its directory record does not.
    const at = bytes.indexOf(Buffer.from('demo_pkg/m40.py'));
    bytes[at + 'demo_pkg/'.length] = 'n'.charCodeAt(0);
    const result = await createDistributionValidator().validate(artifact(bytes, WHEEL_NAME));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.detail).toMatch(/demo_pkg\/m40\.py.*local header/);
  });
});

describe('ForwardReader', () => {
  const bytes = Buffer.from(Array.from({ length: 4 * RUN_GAP }, (_, i) => i % 251));
  const expected = (position: number, length: number) => bytes.subarray(position, position + length);

  it('reads forward within one stream, and opens another behind it or past its run', async () => {
    const a = artifact(bytes, 'x.whl');
    // Headers at 0 and 1000 (one run), then at 3 MiB (past the gap).
    const reader = new ForwardReader(a, [0, 1000, 3 * RUN_GAP], bytes.length);
    expect(await reader.readAt(0, 30)).toEqual(expected(0, 30));
    expect(await reader.readAt(30, 10)).toEqual(expected(30, 10));
    expect(await reader.readAt(1000, 30)).toEqual(expected(1000, 30));
    expect(a.reads()).toBe(1);
    expect(await reader.readAt(3 * RUN_GAP, 30)).toEqual(expected(3 * RUN_GAP, 30));
    expect(a.reads()).toBe(2);
    expect(await reader.readAt(500, 8)).toEqual(expected(500, 8)); // behind: a new stream
    expect(a.reads()).toBe(3);
    reader.close();
  });

  it('answers a read across chunk boundaries whole', async () => {
    const a = artifact(bytes, 'x.whl');
    const reader = new ForwardReader(a, [0, 60_000], bytes.length);
    expect(await reader.readAt(65_530, 20)).toEqual(expected(65_530, 20));
    expect(await reader.readAt(131_000, 200)).toEqual(expected(131_000, 200));
    reader.close();
  });
});
