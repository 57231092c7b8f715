// The s3:// URL of PEP694_BLOBS: what an operator writes and what the store gets.
import { describe, expect, it } from 'vitest';
import { s3OptionsFromUrl } from './options.js';

describe('s3OptionsFromUrl', () => {
  it('reads bucket, prefix and the client settings of an S3-compatible service', () => {
    expect(
      s3OptionsFromUrl('s3://pypi-files/prod/v2?endpoint=http://127.0.0.1:9000&region=eu-west-1&forcePathStyle=true&partSize=16777216'),
    ).toEqual({
      bucket: 'pypi-files',
      prefix: 'prod/v2/',
      partSize: 16_777_216,
      client: {
        endpoint: 'http://127.0.0.1:9000',
        region: 'eu-west-1',
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      },
    });
  });

  it('keeps the SDK defaults for AWS itself (no endpoint): checksums when supported, region from the chain', () => {
    expect(s3OptionsFromUrl('s3://bucket-name')).toEqual({
      bucket: 'bucket-name',
      prefix: '',
      client: { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' },
    });
    expect(s3OptionsFromUrl('s3://bucket-name/?checksums=when_required').client).toMatchObject({
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
  });

  it('refuses what would go wrong later, naming it', () => {
    const cases: [string, RegExp][] = [
      ['http://bucket/x', /not an s3:\/\/ URL/],
      ['s3://', /not an s3:\/\/ URL|bucket/],
      ['s3://Bad_Bucket', /bucket name/],
      ['s3://key:secret@bucket-name', /credentials/],
      ['s3://bucket-name/a b', /prefix/],
      ['s3://bucket-name/a/../b', /prefix/],
      ['s3://bucket-name?endpont=http://x', /unknown s3:\/\/ URL parameter "endpont"/],
      ['s3://bucket-name?endpoint=ftp://x', /endpoint/],
      ['s3://bucket-name?forcePathStyle=yes', /forcePathStyle/],
      ['s3://bucket-name?partSize=1024', /partSize/],
      ['s3://bucket-name?checksums=never', /checksums/],
    ];
    for (const [url, message] of cases) expect(() => s3OptionsFromUrl(url), url).toThrow(message);
  });
});
