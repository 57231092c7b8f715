import { describe, expect, it } from 'vitest';
import { ORIGIN_PLACEHOLDER, resolveInstructions, storableInstructions } from './stored-instructions.js';

const MOUNT = '/upload/mechanisms/vnd-acme-tus';

describe('stored mechanism instructions (issue #21 finding 5)', () => {
  it('stores URLs on the request origin with the placeholder, at any depth, and nothing else', () => {
    const origin = 'http://localhost:8694';
    const map = {
      identifier: 'vnd-acme-tus',
      upload_url: `${origin}${MOUNT}/files/abc`,
      nested: { urls: [`${origin}/upload/files/abc?x=1`, `${origin}#frag`, origin], size: 5, flag: true, none: null },
      elsewhere: 'https://storage.example/bucket/abc',
      lookalike: `${origin}0/not-ours`,
    };
    const stored = storableInstructions(map, origin);
    expect(stored).toEqual({
      identifier: 'vnd-acme-tus',
      upload_url: `${ORIGIN_PLACEHOLDER}${MOUNT}/files/abc`,
      nested: {
        urls: [`${ORIGIN_PLACEHOLDER}/upload/files/abc?x=1`, `${ORIGIN_PLACEHOLDER}#frag`, ORIGIN_PLACEHOLDER],
        size: 5,
        flag: true,
        none: null,
      },
      elsewhere: 'https://storage.example/bucket/abc',
      lookalike: `${origin}0/not-ours`,
    });
    // Read back on another trusted origin, every one of them moves there.
    expect(resolveInstructions(stored, 'https://upload.example.org', MOUNT)).toEqual({
      ...map,
      upload_url: `https://upload.example.org${MOUNT}/files/abc`,
      nested: {
        ...map.nested,
        urls: ['https://upload.example.org/upload/files/abc?x=1', 'https://upload.example.org#frag', 'https://upload.example.org'],
      },
    });
  });

  it('handles a public URL with a path prefix (a proxy mount)', () => {
    const origin = 'https://example.org/pypi';
    const stored = storableInstructions({ identifier: 'x', u: `${origin}${MOUNT}/files/a`, v: 'https://example.org/other' }, origin);
    expect(stored).toEqual({ identifier: 'x', u: `${ORIGIN_PLACEHOLDER}${MOUNT}/files/a`, v: 'https://example.org/other' });
    expect(resolveInstructions(stored, origin, MOUNT).u).toBe(`${origin}${MOUNT}/files/a`);
  });

  it('moves the mechanism-route URLs of rows stored with absolute URLs to the trusted origin', () => {
    const stored = {
      identifier: 'vnd-acme-tus',
      upload_url: `http://attacker.example:8080${MOUNT}/files/abc`,
      behind_proxy: `https://old.example/prefix${MOUNT}`,
      query: `http://attacker.example${MOUNT}?x=1`,
      // Not this mechanism's routes: left alone.
      other_mechanism: `http://attacker.example${MOUNT}-v2/files/abc`,
      other_path: 'http://attacker.example/somewhere/else',
      not_a_url: `${MOUNT}/files/abc`,
    };
    expect(resolveInstructions(stored, 'http://127.0.0.1:8694', MOUNT)).toEqual({
      ...stored,
      upload_url: `http://127.0.0.1:8694${MOUNT}/files/abc`,
      behind_proxy: `http://127.0.0.1:8694${MOUNT}`,
      query: `http://127.0.0.1:8694${MOUNT}?x=1`,
    });
  });
});
