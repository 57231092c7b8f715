/**
 * Receives one `multipart/form-data` request: busboy parses the body as it arrives, the `content`
 * file part is piped (busboy's file stream → a meter that counts and hashes → the blob store's
 * staging write), and the optional `attestations` field is checked as PEP 740 objects. One pass
 * over the bytes, with backpressure from the disk back to the socket: busboy holds its write
 * callback while its file stream is full, so `req.pipe(busboy)` stops reading the socket.
 *
 * Any failure (bad part, busboy limit, malformed body, size over the declaration, disconnect, a
 * stop from outside) destroys the parser and aborts the staging write; only a body that parsed to
 * the end with exactly `size` bytes in `content` and valid attestations is committed.
 */
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import busboy, { type Busboy } from 'busboy';
import {
  ByteMeter,
  createHashers,
  parseMediaType,
  ProblemError,
  validateAttestations,
  verifyAttestations,
  type AcceptedAttestations,
  type Attestation,
  type FileUploadContext,
  type HashName,
  type MechanismHost,
  type StagingWrite,
} from '@pep694/core';

/** The field names of the form (stable API: the mechanism map names them too). */
export const FILE_FIELD = 'content';
export const ATTESTATIONS_FIELD = 'attestations';

/**
 * Bytes a request may carry beyond the file and the attestations field: the boundary lines, the
 * part headers (busboy takes at most 16 KiB each) and any preamble or epilogue. A body larger
 * than `size + attestationsMaxBytes + FORM_OVERHEAD` is refused with 413.
 */
export const FORM_OVERHEAD = 64 * 1024;

/**
 * busboy's limits, from the shape of the form: at most two parts (`content` and `attestations`),
 * one of them a file and one a field. `parts` is one more than the form has because busboy counts
 * the part that *reaches* the limit; a third part trips it.
 */
export const FORM_LIMITS = { parts: 3, files: 1, fields: 1 } as const;

/** Part `Content-Transfer-Encoding`s that leave the bytes as they are (RFC 7578 §4.7 deprecates the rest). */
const IDENTITY_TRANSFER_ENCODINGS = new Set(['7bit', '8bit', 'binary']);

export interface FormOptions {
  /** Whether the `attestations` field is accepted. */
  readonly attestations: boolean;
  /** Largest `attestations` field value, in bytes (busboy's `fieldSize`). */
  readonly attestationsMaxBytes: number;
}

/** What a committed form carried. */
export interface ReceivedForm {
  readonly size: number;
  readonly digests: Readonly<Partial<Record<HashName, string>>>;
  readonly attestations?: AcceptedAttestations | undefined;
}

/**
 * Checks the request's `Content-Type` before anything is read: `multipart/form-data` (415
 * otherwise) with a boundary of 1 to 70 characters (RFC 2046 §5.1.1; 400 otherwise).
 */
export function requireMultipart(header: string | undefined): void {
  const how =
    'send the form as Content-Type: multipart/form-data (an HTML form with enctype="multipart/form-data", fetch with a FormData body, or curl -F)';
  if (header === undefined || header.trim() === '')
    throw new ProblemError('unsupported-media-type', `The Content-Type header is missing; ${how}.`);
  const m = parseMediaType(header);
  if (!m)
    throw new ProblemError(
      'unsupported-media-type',
      `Content-Type ${JSON.stringify(header.slice(0, 100))} is not a valid media type; ${how}.`,
    );
  if (m.type !== 'multipart' || m.subtype !== 'form-data') {
    throw new ProblemError('unsupported-media-type', `Content-Type ${`${m.type}/${m.subtype}`.slice(0, 100)} is not accepted; ${how}.`);
  }
  const boundary = m.params['boundary'];
  if (boundary === undefined || boundary === '') {
    throw new ProblemError('malformed-upload', 'The multipart/form-data Content-Type has no boundary parameter.', {
      errors: [{ source: 'Content-Type', message: 'boundary is missing' }],
    });
  }
  if (boundary.length > 70 || !/^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary)) {
    throw new ProblemError(
      'malformed-upload',
      'The multipart boundary is invalid: 1 to 70 characters from RFC 2046 §5.1.1, not ending in a space.',
      {
        errors: [{ source: 'Content-Type', message: 'boundary is invalid' }],
      },
    );
  }
}

const malformed = (detail: string, extensions?: Record<string, unknown>) =>
  new ProblemError('malformed-upload', detail, extensions ? { extensions } : {});
const unknownField = (name: string, attestations: boolean) =>
  new ProblemError(
    'invalid-parameter',
    `The form has an unknown field ${JSON.stringify(name.slice(0, 100))}; it takes only "${FILE_FIELD}" (the file)${attestations ? ` and "${ATTESTATIONS_FIELD}" (PEP 740 attestations, JSON)` : ''}.`,
    { errors: [{ source: name.slice(0, 100), message: 'unknown field' }] },
  );

/** One multipart request in flight. `done` settles once the staging write is committed or aborted. */
export class FormReceiver {
  /** Request body bytes read so far (for answering after a refusal). */
  bodyBytes = 0;
  private failure: unknown;
  private meter: ByteMeter | undefined;
  private staging: StagingWrite | undefined;
  private fileDone: Promise<void> | undefined;
  private attestations: Attestation[] | undefined;
  private readonly parser: Busboy;
  private parsed!: () => void;
  private readonly parsedPromise: Promise<void>;

  constructor(
    private readonly req: IncomingMessage,
    private readonly ctx: FileUploadContext,
    private readonly host: MechanismHost,
    private readonly options: FormOptions,
  ) {
    this.parsedPromise = new Promise<void>((resolve) => (this.parsed = resolve));
    this.parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: {
        ...FORM_LIMITS,
        fieldSize: options.attestationsMaxBytes,
        fieldNameSize: 100,
      },
    });
  }

  /** Bytes of the `content` part received so far. */
  get fileBytes(): number {
    return this.meter?.bytes ?? 0;
  }

  /** Starts reading the body; resolves with what the form carried, after the commit. */
  async run(): Promise<ReceivedForm> {
    const { parser, req, ctx } = this;
    const maxBody = ctx.file.size + (this.options.attestations ? this.options.attestationsMaxBytes : 0) + FORM_OVERHEAD;
    parser.on('file', (name, stream, info) => this.onFile(name, stream, info));
    parser.on('field', (name, value, info) => this.onField(name, value, info));
    parser.on('partsLimit', () =>
      this.fail(malformed(`The form has too many parts: it takes at most two, "${FILE_FIELD}" and "${ATTESTATIONS_FIELD}".`)),
    );
    parser.on('filesLimit', () =>
      this.fail(
        malformed(
          `The form has more than one file part: only "${FILE_FIELD}" is a file (send ${ATTESTATIONS_FIELD} as a plain field, e.g. curl -F '${ATTESTATIONS_FIELD}=<file.json').`,
        ),
      ),
    );
    parser.on('fieldsLimit', () =>
      this.fail(
        malformed(
          `The form has too many fields: it takes one, "${ATTESTATIONS_FIELD}", at most once, besides the file part "${FILE_FIELD}".`,
        ),
      ),
    );
    parser.on('error', (err: unknown) => this.fail(malformed(`The multipart body is malformed: ${describe(err)}; nothing was stored.`)));
    parser.once('close', () => this.parsed());
    // Counts every body byte (preamble and epilogue too), so that no body runs on without end.
    const count = (chunk: Buffer) => {
      this.bodyBytes += chunk.length;
      if (this.bodyBytes > maxBody && this.failure === undefined) {
        this.fail(
          new ProblemError(
            'payload-too-large',
            `The request body is larger than the declared size of ${ctx.file.size} bytes plus the form around it (${maxBody} bytes in all); nothing was stored.`,
            { extensions: { expected: ctx.file.size } },
          ),
        );
      }
    };
    // A failure before the start (a stop, a disconnect): nothing is read; `answerAfterBody` deals with the body.
    if (this.failure === undefined) {
      req.on('data', count);
      req.pipe(parser);
    }

    try {
      await this.parsedPromise;
      await this.fileDone;
      if (this.failure !== undefined) throw this.failure;
      const meter = this.meter;
      if (!meter || !this.staging) {
        throw malformed(
          `The form has no "${FILE_FIELD}" file part; nothing was stored. Send the file as a part named "${FILE_FIELD}" with a filename (curl -F '${FILE_FIELD}=@file').`,
        );
      }
      if (meter.bytes < ctx.file.size) {
        throw malformed(
          `The "${FILE_FIELD}" part had ${meter.bytes} bytes but the declared size is ${ctx.file.size}; nothing was stored. Send the whole file.`,
          {
            expected: ctx.file.size,
            received: meter.bytes,
          },
        );
      }
      // The field was checked as PEP 740 objects as it arrived; the signatures, certificates and
      // publishers are verified once the form is whole, before anything is committed.
      const verifier = this.host.attestationVerifier;
      const accepted =
        this.attestations && verifier
          ? await verifyAttestations(this.attestations, { ...ctx.file, project: ctx.session.project }, verifier)
          : this.attestations;
      await this.staging.commit();
      // A stop that came while committing: the host deletes the staged blob after cancel/completion return.
      if (this.failure !== undefined) throw this.failure;
      return { size: meter.bytes, digests: meter.digests(), ...(accepted ? { attestations: accepted } : {}) };
    } catch (err) {
      this.fail(err);
      await this.staging?.abort().catch(() => {});
      throw this.failure;
    }
  }

  /**
   * Stops the request with `err` (the first failure wins): the parser is detached and destroyed,
   * which ends the file stream and so the staging pipeline; `run` then aborts the staging write.
   */
  fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.req.unpipe(this.parser);
    this.parser.destroy();
    this.meter?.destroy(err instanceof Error ? err : new Error(String(err)));
    this.parsed();
  }

  private onFile(name: string, stream: Readable, info: { filename?: string | undefined; encoding: string }): void {
    // Destroying the parser destroys its file stream with "Unexpected end of file": a failure already handled.
    stream.on('error', () => {});
    if (this.failure !== undefined) {
      stream.resume();
      return;
    }
    if (name !== FILE_FIELD) {
      stream.resume();
      this.fail(
        name === ATTESTATIONS_FIELD && this.options.attestations
          ? malformed(
              `"${ATTESTATIONS_FIELD}" was sent as a file part; send it as a plain field holding the JSON array (curl -F '${ATTESTATIONS_FIELD}=<file.json', FormData.append('${ATTESTATIONS_FIELD}', json)).`,
            )
          : unknownField(name, this.options.attestations),
      );
      return;
    }
    const encoding = info.encoding.toLowerCase();
    if (!IDENTITY_TRANSFER_ENCODINGS.has(encoding)) {
      stream.resume();
      this.fail(
        new ProblemError(
          'unsupported-media-type',
          `The "${FILE_FIELD}" part uses Content-Transfer-Encoding ${encoding.slice(0, 40)}; send the bytes of the file as they are.`,
        ),
      );
      return;
    }
    const ctx = this.ctx;
    this.fileDone = (async () => {
      try {
        const staging = await this.host.blobs.stage(ctx.stagingKey);
        this.staging = staging;
        // Until pipeline() listens (and after a failure, when it never will), an error of the
        // store's stream must not go unheard: an 'error' with no listener ends the process.
        staging.stream.on('error', () => {});
        // Anything may have failed the form while the staging write was opening (a later part, a
        // disconnect, a stop): then nothing is piped and `run` aborts the write.
        if (this.failure !== undefined) throw this.failure;
        // The meter is made here, in the same tick as pipeline(): `fail` destroys it, and an
        // 'error' emitted by a meter nothing listens to yet would crash the process.
        const meter = new ByteMeter(ctx.file.size, createHashers(Object.keys(ctx.file.hashes) as HashName[]));
        this.meter = meter;
        await pipeline(stream, meter, staging.stream);
      } catch (err) {
        stream.resume(); // never leave busboy waiting on an unread file stream
        this.fail(
          ProblemError.is(err) && err.code === 'payload-too-large'
            ? new ProblemError(
                'payload-too-large',
                `The "${FILE_FIELD}" part is longer than the declared size of ${ctx.file.size} bytes; nothing was stored.`,
                {
                  extensions: { expected: ctx.file.size },
                },
              )
            : err,
        );
      }
    })();
  }

  private onField(name: string, value: string, info: { valueTruncated: boolean }): void {
    if (this.failure !== undefined) return;
    if (name === FILE_FIELD) {
      this.fail(
        malformed(
          `"${FILE_FIELD}" was sent as a plain field; send it as a file part, with a filename or Content-Type: application/octet-stream (curl -F '${FILE_FIELD}=@file', FormData.append('${FILE_FIELD}', blob, filename)).`,
        ),
      );
      return;
    }
    if (name !== ATTESTATIONS_FIELD || !this.options.attestations) {
      this.fail(unknownField(name, this.options.attestations));
      return;
    }
    // An HTML form with an optional attestations textarea sends it empty when nothing was pasted.
    if (value.trim() === '' && !info.valueTruncated) return;
    if (info.valueTruncated) {
      this.fail(
        new ProblemError(
          'body-too-large',
          `The "${ATTESTATIONS_FIELD}" field is larger than ${this.options.attestationsMaxBytes} bytes, the most this index accepts; nothing was stored.`,
        ),
      );
      return;
    }
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new ProblemError(
          'invalid-attestations',
          `The "${ATTESTATIONS_FIELD}" field is not JSON; it must hold a JSON array of PEP 740 attestation objects.`,
          {
            errors: [{ source: ATTESTATIONS_FIELD, message: 'not valid JSON' }],
          },
        );
      }
      this.attestations = validateAttestations(parsed, this.ctx.file);
    } catch (err) {
      // validateAttestations names places as JSON pointers into the array: prefix them with the field.
      this.fail(
        ProblemError.is(err) && err.code === 'invalid-attestations'
          ? new ProblemError(
              'invalid-attestations',
              err.detail.replace(
                'The attestations are invalid at /',
                `The "${ATTESTATIONS_FIELD}" field is invalid at ${ATTESTATIONS_FIELD}/`,
              ),
              {
                errors: err.errors.map((e) =>
                  e.source.startsWith('/') ? { source: `${ATTESTATIONS_FIELD}${e.source}`, message: e.message } : e,
                ),
                // `check` (a statement about another file) stays as core named it.
                ...(err.extensions ? { extensions: err.extensions } : {}),
              },
            )
          : err,
      );
    }
  }
}

/** busboy's error messages are short and safe to show ("Unexpected end of form", "Malformed part header"). */
function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
