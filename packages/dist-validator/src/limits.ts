/** Bounds on the work one validation may do, so that archive bombs cost little. */
export interface DistributionLimits {
  /** Most entries a wheel's central directory, or members an sdist scan, may have. Default 100,000. */
  readonly maxEntries: number;
  /**
   * Largest core metadata file (METADATA, PKG-INFO), counted on the inflated bytes as they are
   * read, not only on the declared size. Default 1 MiB.
   */
  readonly maxMetadataBytes: number;
  /**
   * Most decompressed bytes read from an sdist, whatever its size (every member header is checked,
   * so the whole tar is read). Default 1 GiB.
   */
  readonly maxSdistScanBytes: number;
  /**
   * Most decompressed bytes per compressed byte of an sdist (gzip bombs), counted as the tar
   * streams; an sdist may always decompress to 32 MiB. Default 100.
   */
  readonly maxSdistRatio: number;
  /**
   * Longest `Name`, `Version` and `Metadata-Version` value, in characters. Default 255: a wheel's
   * or sdist's file name holds the name and the version and is at most 255 bytes.
   */
  readonly maxNameVersionLength: number;
  /**
   * Longest `Requires-Python` value, in characters. The index copies it into every project page
   * (`data-requires-python`, `requires-python`). Default 256: real values are under 100.
   */
  readonly maxRequiresPythonLength: number;
}

export const DEFAULT_LIMITS: DistributionLimits = {
  maxEntries: 100_000,
  maxMetadataBytes: 1024 * 1024,
  maxSdistScanBytes: 1024 ** 3,
  maxSdistRatio: 100,
  maxNameVersionLength: 255,
  maxRequiresPythonLength: 256,
};
