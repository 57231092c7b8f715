/**
 * PEP 740 attestation objects, as a client uploads them with a file: to `attestations_url` of
 * `http-post-bytes` (PEP 694 "Required File Upload Mechanisms"), or in whatever place another
 * mechanism gives them (the multipart mechanism's `attestations` field). This checks their
 * *shape* and that their statement is about this file; signatures, certificates, transparency log
 * entries and publishers are the `AttestationVerifier`'s (see attestation-verifier.ts, whose
 * `acceptAttestations` runs both).
 *
 * Protocol model, so it lives here rather than in one mechanism: every mechanism that accepts
 * attestations must accept and refuse the same objects.
 */
import { z } from 'zod';
import { ProblemError, type ProblemFieldError } from './problem.js';
import { distributionIdentity } from './validate/filename.js';
import type { HashName } from './validate/hashes.js';

/** Standard base64 (RFC 4648 §4, with padding), as PEP 740 encodes bytes on the wire. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const base64 = (what: string) =>
  z
    .string({ error: `${what} must be a base64 string` })
    .min(1, `${what} must not be empty`)
    .regex(BASE64, `${what} must be standard base64 (RFC 4648, with padding)`);

/**
 * One attestation object (PEP 740 "Attestation objects"). "Applications or signers may include
 * additional keys so long as all explicitly listed keys are provided", so every level is loose:
 * unknown keys are kept and stored as sent.
 */
export const AttestationSchema = z.looseObject({
  version: z.literal(1, { error: 'version must be 1 (the only attestation version PEP 740 defines)' }),
  verification_material: z.looseObject(
    {
      certificate: base64('certificate'),
      transparency_entries: z.array(z.looseObject({}, { error: 'a transparency entry must be an object' }), {
        error: 'transparency_entries must be an array of objects',
      }),
    },
    { error: 'verification_material must be an object' },
  ),
  envelope: z.looseObject({ statement: base64('statement'), signature: base64('signature') }, { error: 'envelope must be an object' }),
});
export type Attestation = z.infer<typeof AttestationSchema>;

/** PEP 740 upload endpoint: "a JSON array" with "one or more items". */
export const AttestationsSchema = z
  .array(AttestationSchema, { error: 'the body must be a JSON array of attestation objects' })
  .min(1, 'the array must hold at least one attestation object');

export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** PEP 740 "Attestation statement and signature generation": the supported predicate types. */
export const SUPPORTED_PREDICATE_TYPES = ['https://slsa.dev/provenance/v1', 'https://docs.pypi.org/attestations/publish/v1'] as const;

/** What the statement checks need to know about the file. */
export interface AttestedFile {
  readonly filename: string;
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const clip = (s: string) => (s.length > 100 ? `${s.slice(0, 100)}…` : s);

/**
 * The statement's own constraints (PEP 740): a JSON in-toto v1 Statement with exactly one subject,
 * named as the distribution, carrying a hex SHA-256 digest, and a supported predicate type. The
 * subject must be *this* file: its name is the file's name and, when the client declared a sha256,
 * the digest equals it. Returns the problems found (empty when none).
 */
function checkStatement(statementB64: string, file: AttestedFile, at: string): ProblemFieldError[] {
  const source = `${at}/envelope/statement`;
  const fail = (message: string) => [{ source, message }];
  let statement: unknown;
  try {
    statement = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(statementB64, 'base64')));
  } catch {
    return fail('the statement must be base64 of a JSON in-toto Statement');
  }
  if (!isRecord(statement)) return fail('the statement must be a JSON object (an in-toto Statement)');
  if (statement['_type'] !== IN_TOTO_STATEMENT_V1) return fail(`the statement's _type must be ${IN_TOTO_STATEMENT_V1}`);
  const predicateType = statement['predicateType'];
  const errors: ProblemFieldError[] = [];
  if (typeof predicateType !== 'string' || !(SUPPORTED_PREDICATE_TYPES as readonly string[]).includes(predicateType)) {
    errors.push({ source, message: `the statement's predicateType must be one of ${SUPPORTED_PREDICATE_TYPES.join(', ')}` });
  }
  const subjects = statement['subject'];
  if (!Array.isArray(subjects) || subjects.length !== 1) {
    errors.push({ source, message: 'the statement must have exactly one subject' });
    return errors;
  }
  const subject: unknown = subjects[0];
  if (!isRecord(subject)) return [...errors, { source, message: 'the statement subject must be an object' }];
  if (subject['name'] !== file.filename && !sameDistribution(subject['name'], file.filename)) {
    const name = typeof subject['name'] === 'string' ? JSON.stringify(clip(subject['name'])) : 'missing';
    errors.push({ source, message: `the statement subject's name is ${name}, not the file name ${JSON.stringify(file.filename)}` });
  }
  const digest = isRecord(subject['digest']) ? subject['digest']['sha256'] : undefined;
  if (typeof digest !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digest)) {
    errors.push({ source, message: "the statement subject's digest must hold a hex sha256" });
  } else if (file.hashes.sha256 !== undefined && digest.toLowerCase() !== file.hashes.sha256.toLowerCase()) {
    errors.push({
      source,
      message: `the statement subject's sha256 ${digest.toLowerCase()} is not the file's declared sha256 ${file.hashes.sha256.toLowerCase()}`,
    });
  }
  return errors;
}

/**
 * index-hosted-attestations "Attestation verification": the subject's name "MUST" be matched "by
 * parsing using the appropriate source distribution or wheel filename format, as the statement's
 * subject may be equivalent but normalized": equal distribution identities (name, PEP 440 version,
 * build tag, tag sets) are the same file. The digest is checked as well, so this only widens the spelling.
 */
function sameDistribution(name: unknown, filename: string): boolean {
  try {
    return distributionIdentity(name) === distributionIdentity(filename);
  } catch {
    return false;
  }
}

/** JSON pointer of a zod issue path, relative to the body (the array). */
const pointer = (path: readonly PropertyKey[]) => `/${path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

/**
 * Validates a parsed attestations body (a JSON array) against PEP 740 and the file it is for. Returns the
 * attestation objects (unknown keys kept). Throws `invalid-attestations` (400) listing every
 * problem, each naming its place as a JSON pointer such as `/0/envelope/signature`.
 */
export function validateAttestations(body: unknown, file: AttestedFile): Attestation[] {
  const parsed = AttestationsSchema.safeParse(body);
  const errors: ProblemFieldError[] = parsed.success
    ? parsed.data.flatMap((a, i) => checkStatement(a.envelope.statement, file, `/${i}`))
    : parsed.error.issues.map((issue) => ({ source: pointer(issue.path), message: issue.message }));
  if (errors.length > 0 || !parsed.success) {
    const first = errors[0];
    const detail =
      errors.length === 1 && first
        ? `The attestations are invalid at ${first.source}: ${first.message}.`
        : `The attestations have ${errors.length} problems; see errors.`;
    // `check` as the verifier's problems name theirs: a well-formed statement about something else.
    const extensions = parsed.success ? { extensions: { check: 'statement' } } : {};
    throw new ProblemError('invalid-attestations', detail, { errors: errors.slice(0, 50), ...extensions });
  }
  return parsed.data;
}
