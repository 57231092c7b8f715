// The options schema and the part plan: what an operator can get wrong at startup, and S3's part limits.
import { describe, expect, it } from 'vitest';
import { S3PresignedOptionsSchema } from './options.js';
import { partLength, planParts } from './uploads.js';

const MiB = 1024 ** 2;
const store = {
  bucket: 'b',
  s3: { send: () => undefined },
  directObject: () => '',
  keyOfDirectObject: () => undefined,
  adoptDirectObject: () => 0,
};

describe('options', () => {
  it('builds vnd-<operator>-s3multipart-presigned with the defaults (PEP 694 "Server Specific File Upload Mechanisms")', () => {
    const o = S3PresignedOptionsSchema.parse({ operator: 'acme', store });
    expect(o).toMatchObject({ identifier: 'vnd-acme-s3multipart-presigned', partSize: 16 * MiB, urlTtl: 900, batch: 64 });
  });
  it('refuses a missing or malformed operator, a missing store, a part below S3’s 5 MiB, and unknown keys', () => {
    for (const bad of [
      { store },
      { operator: 'Acme', store },
      { operator: 'acme' },
      { operator: 'acme', store: {} },
      { operator: 'acme', store, partSize: 5 * MiB - 1 },
      { operator: 'acme', store, partsize: 5 * MiB },
    ]) {
      expect(S3PresignedOptionsSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('the part plan', () => {
  it('cuts a file in parts of the preferred size, the last one shorter; an empty file is one empty part', () => {
    expect(planParts(0, 16 * MiB)).toEqual({ partSize: 16 * MiB, partCount: 1 });
    expect(planParts(16 * MiB, 16 * MiB)).toEqual({ partSize: 16 * MiB, partCount: 1 });
    const p = planParts(40 * MiB + 1, 16 * MiB);
    expect(p.partCount).toBe(3);
    expect([1, 2, 3].map((n) => partLength(p, 40 * MiB + 1, n))).toEqual([16 * MiB, 16 * MiB, 8 * MiB + 1]);
    expect(partLength(planParts(0, 16 * MiB), 0, 1)).toBe(0);
  });
  it('raises the part size (whole MiB) so that no file needs more than S3’s 10 000 parts', () => {
    const size = 5 * 1024 ** 4; // 5 TiB, S3's largest object
    const p = planParts(size, 16 * MiB);
    expect(p.partCount).toBeLessThanOrEqual(10_000);
    expect(p.partSize % MiB).toBe(0);
    expect(partLength(p, size, p.partCount)).toBeGreaterThan(0);
  });
});
