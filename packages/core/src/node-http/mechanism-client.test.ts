/** The client-half shape check that clients use on halves loaded by package name. */
import { describe, expect, it } from 'vitest';
import { isMechanismClient } from './mechanism-client.js';

describe('isMechanismClient', () => {
  it('accepts an object with name, matches and upload, and nothing less', () => {
    const half = { name: '@acme/half', matches: () => true, upload: async () => ({}) };
    expect(isMechanismClient(half)).toBe(true);
    expect(isMechanismClient({ ...half, name: undefined })).toBe(false);
    expect(isMechanismClient({ name: 'x', matches: () => true })).toBe(false);
    expect(isMechanismClient(null)).toBe(false);
    expect(isMechanismClient(() => undefined)).toBe(false);
  });
});
