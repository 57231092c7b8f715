import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProblemError } from './problem.js';
import {
  CompleteFileUploadRequestSchema,
  CreateFileUploadRequestSchema,
  CreatePublishingSessionRequestSchema,
  ExtendRequestSchema,
  FileUploadSessionResponseSchema,
  MetaSchema,
  parseBody,
  ProblemDocumentSchema,
  PublishingSessionResponseSchema,
  PublishRequestSchema,
} from './schemas.js';

/**
 * The PEP's own JSON examples, read from the spec. They are illustrative: some have trailing
 * commas and "..." where URLs go, so those two things are repaired before parsing.
 */
function pepJsonExamples(): unknown[] {
  const rst = readFileSync(new URL('../../../../shared/spec/pep-0694.rst', import.meta.url), 'utf8');
  const blocks = rst.split('.. code-block:: json').slice(1);
  return blocks.map((block) => {
    const lines = block.split('\n').slice(1);
    const body: string[] = [];
    for (const line of lines) {
      if (line.trim() === '' && body.length === 0) continue;
      if (line.trim() !== '' && !line.startsWith('    ')) break;
      body.push(line);
    }
    let n = 0;
    const text = body
      .join('\n')
      .replace(/,(\s*[}\]])/g, '$1')
      .replace(
        /"(session|upload|publish|extend|stage|file-upload-session|complete|file_url|attestations_url)": "\.\.\."/g,
        (_m, k: string) => `"${k}": "https://upload.example.com/${k}/${++n}"`,
      );
    return JSON.parse(text) as unknown;
  });
}

const examples = pepJsonExamples();

function schemaFor(example: Record<string, unknown>) {
  const links = example.links as Record<string, unknown> | undefined;
  if (links && 'upload' in links) return ['publishing session response', PublishingSessionResponseSchema] as const;
  if (links && 'file-upload-session' in links) return ['file upload session response', FileUploadSessionResponseSchema] as const;
  if ('type' in example && 'title' in example) return ['problem details', ProblemDocumentSchema] as const;
  if ('filename' in example) return ['create file upload request', CreateFileUploadRequestSchema] as const;
  if ('name' in example) return ['create publishing session request', CreatePublishingSessionRequestSchema] as const;
  if ('extend-for' in example) return ['extend request', ExtendRequestSchema] as const;
  return ['publish / complete request', PublishRequestSchema] as const;
}

describe("PEP 694's own JSON examples round-trip through the schemas", () => {
  it('finds the examples in the PEP', () => {
    expect(examples.length).toBeGreaterThanOrEqual(9);
  });
  examples.forEach((example, i) => {
    const [kind, schema] = schemaFor(example as Record<string, unknown>);
    it(`example ${i + 1}: ${kind}`, () => {
      const parsed = schema.parse(example);
      expect(JSON.parse(JSON.stringify(parsed))).toEqual(example);
    });
  });
});

const meta = { 'api-version': '2.0' };

describe('request schemas', () => {
  it('PEP 694 Optional Index-specific Metadata: keys MUST begin with an underscore', () => {
    expect(MetaSchema.safeParse({ ...meta, '_pypi.org': { organization: 'x' } }).success).toBe(true);
    const bad = MetaSchema.safeParse({ ...meta, organization: 'x' });
    expect(bad.success).toBe(false);
  });
  it('requires meta.api-version as MAJOR.MINOR', () => {
    for (const v of ['2', '2.0.0', 'v2.0', 2, null]) {
      expect(MetaSchema.safeParse({ 'api-version': v }).success).toBe(false);
    }
  });
  it('create file upload: size is a non-negative whole number', () => {
    const base = { meta, filename: 'a-1.0.tar.gz', hashes: { sha256: 'x' }, mechanism: 'http-post-bytes' };
    expect(CreateFileUploadRequestSchema.safeParse({ ...base, size: 0 }).success).toBe(true);
    for (const size of [-1, 1.5, '10', Number.MAX_SAFE_INTEGER + 2, null]) {
      expect(CreateFileUploadRequestSchema.safeParse({ ...base, size }).success).toBe(false);
    }
  });
  it('extend-for is a positive whole number of seconds', () => {
    expect(ExtendRequestSchema.safeParse({ meta, 'extend-for': 3600 }).success).toBe(true);
    for (const v of [0, -5, 1.5, '3600']) expect(ExtendRequestSchema.safeParse({ meta, 'extend-for': v }).success).toBe(false);
  });
  it('ignores unknown top-level keys, since 2.x minors may add optional ones', () => {
    expect(PublishRequestSchema.parse({ meta, future: true })).toEqual({ meta });
  });
  it('PEP 694 Publishing Session Files: canceled never appears in the files mapping', () => {
    const file = { status: 'canceled', link: 'https://x.example/f' };
    const body = {
      meta,
      links: { session: 'https://x.example/s', upload: 'https://x.example/u', publish: 'https://x.example/p' },
      mechanisms: ['http-post-bytes'],
      'expires-at': '2030-08-01T12:00:00Z',
      status: 'open',
      files: { 'a-1.0.tar.gz': file },
    };
    expect(PublishingSessionResponseSchema.safeParse(body).success).toBe(false);
    expect(
      PublishingSessionResponseSchema.safeParse({ ...body, files: { 'a-1.0.tar.gz': { ...file, status: 'completed' } } }).success,
    ).toBe(true);
    expect(PublishingSessionResponseSchema.safeParse({ ...body, mechanisms: [] }).success).toBe(false);
    expect(PublishingSessionResponseSchema.safeParse({ ...body, 'expires-at': '2030-08-01T12:00:00.5Z' }).success).toBe(false);
  });
});

describe('parseBody: malformed input gives a coded error, never another exception', () => {
  const schemas = [
    CreatePublishingSessionRequestSchema,
    PublishRequestSchema,
    ExtendRequestSchema,
    CreateFileUploadRequestSchema,
    CompleteFileUploadRequestSchema,
    PublishingSessionResponseSchema,
    FileUploadSessionResponseSchema,
  ];
  it('names every invalid field with a JSON pointer', () => {
    try {
      parseBody(CreateFileUploadRequestSchema, { meta: { 'api-version': 2 }, filename: '', size: -1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProblemError);
      const p = err as ProblemError;
      expect(p.code).toBe('invalid-body');
      expect(p.status).toBe(400);
      const sources = p.errors.map((e) => e.source);
      expect(sources).toEqual(expect.arrayContaining(['/meta/api-version', '/filename', '/size', '/hashes', '/mechanism']));
    }
  });
  it('a body that is not an object', () => {
    for (const body of [null, undefined, 42, 'x', [], true]) {
      expect(() => parseBody(PublishRequestSchema, body)).toThrowError(ProblemError);
    }
  });
  it('property: any JSON value either parses or throws invalid-body', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: schemas.length - 1 }), (value, i) => {
        try {
          parseBody(schemas[i]!, value);
        } catch (err) {
          expect(err).toBeInstanceOf(ProblemError);
          expect((err as ProblemError).code).toBe('invalid-body');
        }
      }),
      { numRuns: 500 },
    );
  });
  it('property: objects shaped like requests with wrong types never escape as other errors', () => {
    const anyValue = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.constant(null),
      fc.array(fc.string()),
      fc.dictionary(fc.string(), fc.string()),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            meta: fc.oneof(anyValue, fc.record({ 'api-version': anyValue })),
            name: anyValue,
            version: anyValue,
            filename: anyValue,
            size: anyValue,
            hashes: anyValue,
            mechanism: anyValue,
            'extend-for': anyValue,
          },
          { requiredKeys: [] },
        ),
        (body) => {
          for (const schema of schemas) {
            try {
              parseBody(schema, body);
            } catch (err) {
              expect(err).toBeInstanceOf(ProblemError);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
