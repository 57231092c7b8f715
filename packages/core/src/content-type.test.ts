import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseAccept,
  checkApiVersion,
  isUploadJson,
  negotiateResponseType,
  parseMediaType,
  parseUploadContentType,
  UPLOAD_V2_JSON,
} from './content-type.js';
import { ProblemError } from './problem.js';
import { API_MAJOR } from './version.js';
import { problemOf } from './test-support.js';

describe('parseMediaType (RFC 9110 media-type grammar)', () => {
  it.each([
    ['application/json', { type: 'application', subtype: 'json', params: {} }],
    [UPLOAD_V2_JSON, { type: 'application', subtype: 'vnd.pypi.upload.v2+json', params: {} }],
    ['  Application/VND.PyPI.Upload.V2+JSON  ', { type: 'application', subtype: 'vnd.pypi.upload.v2+json', params: {} }],
    ['text/html; Charset=UTF-8', { type: 'text', subtype: 'html', params: { charset: 'UTF-8' } }],
    ['text/html ;charset=utf-8 ; q=0.5', { type: 'text', subtype: 'html', params: { charset: 'utf-8', q: '0.5' } }],
    ['a/b; x="quoted, with ; and \\"escapes\\""', { type: 'a', subtype: 'b', params: { x: 'quoted, with ; and "escapes"' } }],
    ['a/b; x=""', { type: 'a', subtype: 'b', params: { x: '' } }],
    ['a/b;', { type: 'a', subtype: 'b', params: {} }], // RFC 9110 allows empty parameter elements
    ['a/b; ; x=1', { type: 'a', subtype: 'b', params: { x: '1' } }],
    ['*/*;q=0', { type: '*', subtype: '*', params: { q: '0' } }],
    ['a/b;\t__proto__=x', { type: 'a', subtype: 'b', params: { ['__proto__']: 'x' } }],
  ])('parses %j', (header, expected) => {
    const parsed = parseMediaType(header);
    expect(parsed).toEqual(expected);
    expect(Object.getPrototypeOf(parsed?.params)).toBe(Object.prototype);
  });

  it.each([
    '',
    '   ',
    ';;;',
    'json',
    'application/',
    '/json',
    'application/json/x',
    'application /json',
    'application/json; charset',
    'application/json; charset=',
    'application/json; charset = utf-8',
    'application/json; x="unterminated',
    'application/json, text/html',
    'appl(ication/json',
    'application/json; x=ü€',
  ])('rejects %j', (header) => {
    expect(parseMediaType(header)).toBeNull();
  });
});

describe('parseUploadContentType', () => {
  it.each([
    UPLOAD_V2_JSON,
    'APPLICATION/VND.PYPI.UPLOAD.V2+JSON',
    ' application/vnd.pypi.upload.v2+json ',
    'application/vnd.pypi.upload.v2+json; charset=utf-8',
    'application/vnd.pypi.upload.v2+json;charset="UTF-8"',
  ])('PEP 694 Content Types: accepts %j', (header) => {
    expect(parseUploadContentType(header)).toEqual({ major: API_MAJOR, format: 'json' });
    expect(isUploadJson(header)).toBe(true);
  });

  it.each([
    [undefined, /header is missing/],
    ['', /header is missing/],
    ['  ', /header is missing/],
    [';;;', /is not a valid media type/],
    ['application/json', /application\/json is not accepted/],
    ['text/html', /text\/html is not accepted/],
    ['multipart/form-data; boundary=x', /multipart\/form-data is not accepted/],
    ['application/vnd.pypi.simple.v1+json', /vnd\.pypi\.simple\.v1\+json is not accepted/],
    ['application/vnd.pypi.upload.v3+json', /API version v3 is not supported, only v2/],
    ['application/vnd.pypi.upload.v1+json', /API version v1 is not supported, only v2/],
    ['application/vnd.pypi.upload.v02+json', /API version v02 is not supported/],
    ['application/vnd.pypi.upload.latest+json', /"latest" alias of PEP 691 is not defined by PEP 694/],
    ['application/vnd.pypi.upload.v2+xml', /format \+xml is not supported, only \+json/],
    ['application/vnd.pypi.upload.v3+html', /v3 is not supported.*format \+html is not supported/],
  ])('PEP 694 Content Types: requests MUST use exactly the v2 JSON type; %j is refused with 415', (header, detail) => {
    const err = problemOf(() => parseUploadContentType(header));
    expect(err.code).toBe('unsupported-media-type');
    expect(err.status).toBe(415);
    expect(err.detail).toMatch(detail);
    expect(err.detail).toContain(`must be sent as ${UPLOAD_V2_JSON}`);
    expect(isUploadJson(header)).toBe(false);
  });

  it('keeps echoed client input short', () => {
    const err = problemOf(() => parseUploadContentType(`application/${'x'.repeat(10_000)}`));
    expect(err.detail.length).toBeLessThan(300);
  });
});

describe('checkApiVersion', () => {
  const body = (v: unknown) => ({ meta: { 'api-version': v }, name: 'foo', version: '1.0' });

  it.each(['2.0', '2.1', '2.7', '2.10'])(
    'PEP 694 Content Types: minor versions are non-disruptive, so api-version %j is accepted under v2',
    (v) => {
      expect(() => checkApiVersion(body(v), 2)).not.toThrow();
    },
  );

  it.each([
    ['3.0', 2],
    ['1.0', 2],
    ['0.9', 2],
    ['2.0', 3],
  ])('PEP 694 Content Types: meta.api-version major MUST match the Content-Type major (%j vs v%i)', (v, major) => {
    const err = problemOf(() => checkApiVersion(body(v), major));
    expect(err.code).toBe('api-version-mismatch');
    expect(err.status).toBe(400);
    expect(err.detail).toContain(JSON.stringify(v));
    expect(err.detail).toContain(`application/vnd.pypi.upload.v${major}+json`);
    expect(err.errors).toEqual([{ source: '/meta/api-version', message: expect.stringContaining(`${major}`) }]);
  });

  it.each(['2', '2.0.0', 'v2.0', ' 2.0', '02.0', '2.x', ''])(
    'PEP 694 Versioning: api-version %j is not MAJOR.MINOR and is refused as invalid-body',
    (v) => {
      const err = problemOf(() => checkApiVersion(body(v), 2));
      expect(err.code).toBe('invalid-body');
      expect(err.errors[0]?.source).toBe('/meta/api-version');
    },
  );

  it.each([
    ['no body', undefined],
    ['null body', null],
    ['array body', [{ meta: { 'api-version': '3.0' } }]],
    ['string body', '{"meta":{"api-version":"3.0"}}'],
    ['no meta', { name: 'foo' }],
    ['null meta', { meta: null }],
    ['array meta', { meta: ['3.0'] }],
    ['meta without api-version', { meta: {} }],
    ['numeric api-version', body(3)],
    ['null api-version', body(null)],
  ])('leaves %s to the schema', (_label, b) => {
    expect(() => checkApiVersion(b, 2)).not.toThrow();
  });
});

describe('parseAccept (RFC 9110 §12.5.1)', () => {
  it('keeps members in order with their q, commas inside quoted strings included', () => {
    const got = parseAccept('text/html;q=0.5, application/x;a="1,2";q=0, */*');
    expect(got.map((r) => [`${r.range.type}/${r.range.subtype}`, r.q])).toEqual([
      ['text/html', 0.5],
      ['application/x', 0],
      ['*/*', 1],
    ]);
    expect(got[1]?.range.params['a']).toBe('1,2');
  });
  it('drops malformed members and invalid qvalues; absent or empty is an empty list', () => {
    expect(parseAccept('text/html;q=1.5, nonsense, , application/json;q=0.123')).toEqual([
      { range: expect.objectContaining({ type: 'application', subtype: 'json' }), q: 0.123 },
    ]);
    expect(parseAccept(undefined)).toEqual([]);
    expect(parseAccept('')).toEqual([]);
  });
});

describe('negotiateResponseType', () => {
  it.each([
    [undefined, 'no Accept header (PEP 691: absent means */*)'],
    ['', 'an empty Accept'],
    ['  ', 'a blank Accept'],
    ['*/*', 'the match-all range'],
    ['application/*', 'the application/* range'],
    [UPLOAD_V2_JSON, 'the exact type'],
    ['Application/Vnd.PyPI.Upload.V2+Json', 'the exact type in another case'],
    [`${UPLOAD_V2_JSON}; charset=utf-8`, 'the exact type with a parameter'],
    ['application/json', 'plain JSON (the body is JSON; it is still labelled v2+json)'],
    ['application/vnd.pypi.upload.v3+json, application/vnd.pypi.upload.v2+json;q=0.5', 'v2 at a lower q than v3'],
    ['text/html, */*;q=0.01', 'a low-q fallback range'],
    ['text/html;q=0.9, application/json;q=0.1', 'JSON at low q'],
    ['application/vnd.pypi.upload.v3+json;q=1.000, */*;q=0.001', 'q values with 3 decimals'],
    ['application/*;q=0, application/json', 'application/json is more specific than application/*;q=0'],
    ['*/*;q=0, application/vnd.pypi.upload.v2+json', 'the exact type overrides */*;q=0'],
    [`${UPLOAD_V2_JSON};q=0, ${UPLOAD_V2_JSON}`, 'the highest q among duplicates'],
    [',, text/html;q=0.5 , , */*;q=0.1,', 'empty list elements'],
    ['application/json; x="a, b", text/html', 'commas inside quoted strings'],
    [';;;', 'a header with no valid member (treated as absent)'],
    ['*/*;q=2', 'an invalid q (member ignored, header treated as absent)'],
  ])('PEP 691 Version + Format Selection: %j → v2 JSON (%s)', (accept, _why) => {
    expect(negotiateResponseType(accept)).toBe(UPLOAD_V2_JSON);
  });

  it.each([
    [
      'application/vnd.pypi.upload.v3+json',
      [/asked for application\/vnd\.pypi\.upload\.v3\+json/, /API version v3 is not supported, only v2/],
    ],
    ['application/vnd.pypi.upload.v2+xml', [/format \+xml is not supported, only \+json/]],
    ['application/vnd.pypi.upload.latest+json', [/"latest" alias of PEP 691 is not defined by PEP 694/]],
    ['text/html', [/asked for text\/html\./]],
    ['text/html, image/png;q=0.5', [/asked for text\/html, image\/png\./]],
    ['*/*;q=0', [/rules out \*\/\* with q=0/]],
    [`${UPLOAD_V2_JSON};q=0`, [/rules out application\/vnd\.pypi\.upload\.v2\+json with q=0/]],
    ['application/json;q=0, */*', [/rules out application\/json with q=0/]],
    ['application/vnd.pypi.upload.v3+json, */*;q=0', [/v3 is not supported/, /only v2; it rules out \*\/\* with q=0/]],
    ['text/html;q=0', [/accepts nothing \(every range has q=0\)/]],
    [
      'application/vnd.pypi.upload.v1+json;q=0.2, application/vnd.pypi.upload.v3+json;q=0.9',
      [/v1 is not supported/, /v3 is not supported/],
    ],
  ])('PEP 694 Content Types: %j is not acceptable (406 naming what was asked and offered)', (accept, details) => {
    const err = problemOf(() => negotiateResponseType(accept));
    expect(err.code).toBe('not-acceptable');
    expect(err.status).toBe(406);
    expect(err.detail).toContain(`Only ${UPLOAD_V2_JSON} is available`);
    for (const d of details) expect(err.detail).toMatch(d);
    expect(err.extensions).toEqual({ available: [UPLOAD_V2_JSON] });
  });

  it('keeps the 406 detail short for a huge Accept header', () => {
    const accept = Array.from({ length: 2_000 }, (_, i) => `application/vnd.pypi.upload.v${i + 3}+json`).join(', ');
    expect(problemOf(() => negotiateResponseType(accept)).detail.length).toBeLessThan(400);
  });
});

describe('robustness', () => {
  const headerish = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc
      .array(fc.constantFrom('application', 'vnd.pypi.upload.v2+json', '*', '/', ';', ',', '=', '"', '\\', ' ', '\t', 'q', '0.5', 'x'), {
        maxLength: 30,
      })
      .map((parts) => parts.join('')),
  );

  it('arbitrary strings never make these functions throw anything but ProblemError', () => {
    const onlyProblems = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        if (!ProblemError.is(err)) throw err;
      }
    };
    fc.assert(
      fc.property(headerish, (s) => {
        const m = parseMediaType(s);
        if (m) expect(Object.getPrototypeOf(m.params)).toBe(Object.prototype);
        expect(typeof isUploadJson(s)).toBe('boolean');
        onlyProblems(() => parseUploadContentType(s));
        onlyProblems(() => negotiateResponseType(s));
        onlyProblems(() => checkApiVersion({ meta: { 'api-version': s } }, 2));
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.anything(), fc.integer(), (body, major) => {
        onlyProblems(() => checkApiVersion(body, major));
        onlyProblems(() => checkApiVersion({ meta: body }, major));
      }),
    );
  });

  it('parses pathological headers in linear time', () => {
    const start = performance.now();
    const nasty = [`a/b${'; '.repeat(50_000)}x`, `a/b; x="${'\\"'.repeat(50_000)}`, `${' '.repeat(100_000)}a`];
    for (const s of nasty) {
      parseMediaType(s);
      expect(() => negotiateResponseType(s)).not.toThrow(TypeError);
    }
    expect(performance.now() - start).toBeLessThan(1_000);
  });
});
