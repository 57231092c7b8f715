/** The reason phrase twine 4.0.2 prints (`response.reason`): always a valid, one-line status line. */
import { describe, expect, it } from 'vitest';
import { reasonPhrase } from './answer.js';

describe('reasonPhrase', () => {
  it('keeps a message as it is', () => {
    expect(reasonPhrase("File already exists ('a-1.0.tar.gz').")).toBe("File already exists ('a-1.0.tar.gz').");
  });
  it('folds line breaks and control characters, replaces non-ASCII, and bounds the length', () => {
    expect(reasonPhrase('one\r\ntwo\tthree\u0000four')).toBe('one two three?four');
    expect(reasonPhrase('café')).toBe('caf?');
    const long = reasonPhrase('x'.repeat(1000));
    expect(long.length).toBe(400);
    expect(long.endsWith('...')).toBe(true);
    for (const s of ['\u2028', '\ud800', '\n\n', 'é'.repeat(500)]) expect(reasonPhrase(s)).toMatch(/^[\x20-\x7e]*$/);
  });
});
