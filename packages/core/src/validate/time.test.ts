import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { formatExpiresAt, isValidExpiresAt } from './time.js';

describe('formatExpiresAt', () => {
  it('formats UTC with Z and whole seconds, truncating milliseconds', () => {
    expect(formatExpiresAt(new Date(Date.UTC(2030, 7, 1, 12, 0, 0)))).toBe('2030-08-01T12:00:00Z');
    expect(formatExpiresAt(new Date('2030-08-01T12:00:00.999Z'))).toBe('2030-08-01T12:00:00Z');
    expect(formatExpiresAt(new Date('2030-08-01T14:30:05.5+02:00'))).toBe('2030-08-01T12:30:05Z');
  });

  it('refuses dates RFC 3339 cannot express', () => {
    expect(() => formatExpiresAt(new Date(NaN))).toThrow(RangeError);
    expect(() => formatExpiresAt(new Date('+010000-01-01T00:00:00Z'))).toThrow(RangeError);
  });

  it('property: every formatted date is valid and parses back to the truncated time', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
        (d) => {
          const s = formatExpiresAt(d);
          expect(isValidExpiresAt(s)).toBe(true);
          expect(new Date(s).getTime()).toBe(Math.floor(d.getTime() / 1000) * 1000);
        },
      ),
    );
  });
});

describe('isValidExpiresAt', () => {
  it.each(['2030-08-01T12:00:00Z', '2024-02-29T23:59:59Z', '2000-02-29T00:00:00Z', '0001-01-01T00:00:00Z'])('accepts %s', (s) => {
    expect(isValidExpiresAt(s)).toBe(true);
  });

  it.each([
    '2030-13-01T12:00:00Z',
    '2030-00-01T12:00:00Z',
    '2030-02-30T12:00:00Z',
    '2023-02-29T12:00:00Z',
    '1900-02-29T12:00:00Z',
    '2030-04-31T12:00:00Z',
    '2030-08-00T12:00:00Z',
    '2030-08-01T24:00:00Z',
    '2030-08-01T12:60:00Z',
    '2030-08-01T12:00:60Z',
    '2030-08-01T12:00:00.000Z',
    '2030-08-01T12:00:00+00:00',
    '2030-08-01T12:00:00z',
    '2030-08-01t12:00:00Z',
    '2030-08-01 12:00:00Z',
    '2030-08-01T12:00:00Z\n',
    ' 2030-08-01T12:00:00Z',
    '2030-8-1T12:00:00Z',
    '+2030-08-01T12:00:00Z',
    '',
  ])('refuses %j', (s) => {
    expect(isValidExpiresAt(s)).toBe(false);
  });

  it('never throws', () => {
    fc.assert(fc.property(fc.anything(), (v) => void isValidExpiresAt(v)));
    fc.assert(fc.property(fc.string(), (s) => void isValidExpiresAt(s)));
  });
});
