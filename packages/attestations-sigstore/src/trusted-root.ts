/**
 * Trust roots: the Sigstore public-good instance's `trusted_root.json` by default, as
 * `@sigstore/tuf` ships it (embedded in its TUF seeds, so it works offline and is updated by
 * updating that package), or an operator's own (a private Sigstore instance's `trusted_root.json`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';

/** The TUF repository of the public-good instance, as named in `@sigstore/tuf`'s seeds. */
const PUBLIC_GOOD_TUF = 'https://tuf-repo-cdn.sigstore.dev';

/** Parses a `trusted_root.json` (Sigstore's TrustedRoot message in its JSON form). */
export function trustedRootFromJSON(json: unknown): TrustedRoot {
  const root = TrustedRoot.fromJSON(json);
  if (root.certificateAuthorities.length === 0) throw new Error('the trusted root names no certificate authority');
  if (root.tlogs.length === 0) throw new Error('the trusted root names no transparency log');
  return root;
}

/** Reads an operator's `trusted_root.json`. */
export function readTrustedRoot(path: string): TrustedRoot {
  try {
    return trustedRootFromJSON(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new Error(`cannot use the trusted root ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The public-good trusted root shipped in `@sigstore/tuf`'s `seeds.json` (no network). */
export function publicGoodTrustedRoot(): TrustedRoot {
  const seedsPath = createRequire(import.meta.url).resolve('@sigstore/tuf/seeds.json');
  const seeds = JSON.parse(readFileSync(seedsPath, 'utf8')) as Record<string, { targets?: Record<string, string> }>;
  const encoded = seeds[PUBLIC_GOOD_TUF]?.targets?.['trusted_root.json'];
  if (!encoded) throw new Error(`@sigstore/tuf's seeds hold no trusted_root.json for ${PUBLIC_GOOD_TUF}`);
  return trustedRootFromJSON(JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')));
}

export function trustMaterialOf(root: TrustedRoot): TrustMaterial {
  return toTrustMaterial(root);
}
