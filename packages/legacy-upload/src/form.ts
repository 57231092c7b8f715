/**
 * Receives one legacy upload: busboy parses the `multipart/form-data` body as it arrives; the
 * fields before the file part (twine sends every field first) are kept in memory, bounded; when
 * the `content` part starts, `decide` checks them (and may refuse) and names where the bytes go;
 * the part is then piped busboy → a meter that counts and hashes → the blob store's staging
 * write. One pass over the bytes, backpressure from the disk back to the socket, nothing buffered
 * whole. Any failure destroys the parser and aborts the staging write: nothing partial is committed.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy, { type Busboy } from 'busboy';
import { ByteMeter, createHashers, ProblemError, type BlobStore, type HashName, type StagingWrite } from '@pep694/core';
import type { FormFields } from './fields.js';

/** The file part's name (twine, Warehouse). */
export const CONTENT_FIELD = 'content';
/** A detached GPG signature twine sends as a second file part with `--sign`; PyPI ignores them now, and so do we. */
const SIGNATURE_FIELD = 'gpg_signature';
/** Part headers, boundaries, preamble and epilogue, beyond the fields and the file. */
export const FORM_OVERHEAD = 64 * 1024;
/** Part `Content-Transfer-Encoding`s that leave the bytes as they are (RFC 7578 §4.7). */
const IDENTITY_TRANSFER_ENCODINGS = new Set(['7bit', '8bit', 'binary']);

export interface FormLimits {
  /** Largest file, in bytes (the host's `maxFileSize`). */
  readonly maxFileSize: number;
  /** Most bytes of all the fields together (the description is the largest). */
  readonly maxFieldBytes: number;
  /** Most fields (a repeated field counts each time: classifiers, requires_dist). */
  readonly maxFields: number;
}

/** Where the file part goes, once the fields before it are checked. */
export interface ContentTarget {
  readonly stagingKey: string;
  /** Digests to compute in the stream. */
  readonly hashes: readonly HashName[];
}

export interface ReceivedForm {
  readonly fields: FormFields;
  readonly filename: string;
  readonly size: number;
  readonly digests: Readonly<Partial<Record<HashName, string>>>;
  readonly stagingKey: string;
}

const malformed = (detail: string) => new ProblemError('malformed-upload', detail);

export class LegacyFormReceiver {
  /** Request body bytes read so far. */
  bodyBytes = 0;
  private failure: unknown;
  private readonly fields = new Map<string, string[]>();
  private fieldBytes = 0;
  private content: { filename: string; target?: ContentTarget; meter?: ByteMeter; staging?: StagingWrite; done: Promise<void> } | undefined;
  private readonly parser: Busboy;
  private parsed!: () => void;
  private readonly parsedPromise = new Promise<void>((resolve) => (this.parsed = resolve));

  constructor(
    private readonly req: IncomingMessage,
    private readonly blobs: BlobStore,
    private readonly limits: FormLimits,
    private readonly decide: (fields: FormFields, filename: string | undefined) => Promise<ContentTarget>,
  ) {
    this.parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      // The file name as sent, path and all, so that a name with a path is refused, not cut to its last part.
      preservePath: true,
      limits: {
        fields: limits.maxFields,
        fieldSize: limits.maxFieldBytes,
        fieldNameSize: 100,
        files: 2,
        parts: limits.maxFields + 3,
      },
    });
  }

  /** Reads the body; resolves once the file is committed to its staging key. */
  async run(): Promise<ReceivedForm> {
    const { parser, req, limits } = this;
    const maxBody = limits.maxFileSize + limits.maxFieldBytes + FORM_OVERHEAD;
    parser.on('field', (name, value, info) => this.onField(name, value, info));
    parser.on('file', (name, stream, info) => this.onFile(name, stream, info));
    parser.on('fieldsLimit', () => this.fail(tooMany(`more than ${limits.maxFields} fields`)));
    parser.on('partsLimit', () => this.fail(tooMany(`more than ${limits.maxFields + 3} parts`)));
    parser.on('filesLimit', () =>
      this.fail(malformed(`The form has more than one file besides ${SIGNATURE_FIELD}; send one distribution per request.`)),
    );
    parser.on('error', (err: unknown) => this.fail(malformed(`The multipart body is malformed: ${describe(err)}; nothing was stored.`)));
    parser.once('close', () => this.parsed());
    const count = (chunk: Buffer) => {
      this.bodyBytes += chunk.length;
      if (this.bodyBytes > maxBody && this.failure === undefined) {
        this.fail(
          new ProblemError(
            'payload-too-large',
            `The upload is larger than this index accepts (files up to ${limits.maxFileSize} bytes, fields up to ${limits.maxFieldBytes} bytes); nothing was stored.`,
          ),
        );
      }
    };
    req.on('data', count);
    // A client gone (closed, reset, broken framing) before the end: busboy would wait for the rest forever.
    const gone = () => {
      if (!req.complete) this.fail(malformed('The client closed the connection before the whole form arrived; nothing was stored.'));
    };
    req.once('close', gone);
    req.once('aborted', gone);
    req.on('error', gone);
    req.pipe(parser);
    try {
      await this.parsedPromise;
      await this.content?.done;
      if (this.failure !== undefined) throw this.failure;
      const c = this.content;
      if (!c?.meter || !c.staging || !c.target) {
        throw malformed(
          `The form has no "${CONTENT_FIELD}" file part; nothing was stored. Send the distribution as a file part named ${CONTENT_FIELD}.`,
        );
      }
      await c.staging.commit();
      if (this.failure !== undefined) throw this.failure;
      return {
        fields: this.fields,
        filename: c.filename,
        size: c.meter.bytes,
        digests: c.meter.digests(),
        stagingKey: c.target.stagingKey,
      };
    } catch (err) {
      this.fail(err);
      await this.content?.staging?.abort().catch(() => {});
      throw this.failure;
    }
  }

  /** Stops the request with `err` (the first failure wins): the parser is detached and destroyed. */
  fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.req.unpipe(this.parser);
    this.parser.destroy();
    this.content?.meter?.destroy(err instanceof Error ? err : new Error(String(err)));
    this.parsed();
  }

  private onField(name: string, value: string, info: { valueTruncated: boolean; nameTruncated: boolean }): void {
    if (this.failure !== undefined) return;
    this.fieldBytes += name.length + value.length;
    if (info.valueTruncated || info.nameTruncated || this.fieldBytes > this.limits.maxFieldBytes) {
      this.fail(
        new ProblemError(
          'body-too-large',
          `The form's fields are larger than this index accepts (${this.limits.maxFieldBytes} bytes in all); nothing was stored.`,
        ),
      );
      return;
    }
    if (name === CONTENT_FIELD) {
      this.fail(malformed(`"${CONTENT_FIELD}" was sent as a plain field; send the distribution as a file part with a filename.`));
      return;
    }
    const values = this.fields.get(name);
    if (values) values.push(value);
    else this.fields.set(name, [value]);
  }

  private onFile(name: string, stream: Readable, info: { filename?: string | undefined; encoding: string }): void {
    // Destroying the parser destroys its file stream with "Unexpected end of file": already handled.
    stream.on('error', () => {});
    if (this.failure !== undefined || name === SIGNATURE_FIELD) {
      stream.resume();
      return;
    }
    if (name !== CONTENT_FIELD || this.content) {
      stream.resume();
      this.fail(
        new ProblemError(
          'invalid-parameter',
          this.content
            ? `The form has a second file part ${JSON.stringify(name.slice(0, 50))}; send one distribution per request.`
            : `The form has an unexpected file part ${JSON.stringify(name.slice(0, 50))}; the distribution goes in "${CONTENT_FIELD}".`,
        ),
      );
      return;
    }
    if (!IDENTITY_TRANSFER_ENCODINGS.has(info.encoding.toLowerCase())) {
      stream.resume();
      this.fail(
        new ProblemError(
          'unsupported-media-type',
          `The "${CONTENT_FIELD}" part uses Content-Transfer-Encoding ${info.encoding.slice(0, 40)}; send the bytes of the file as they are.`,
        ),
      );
      return;
    }
    const content: NonNullable<LegacyFormReceiver['content']> = { filename: info.filename ?? '', done: Promise.resolve() };
    this.content = content;
    content.done = (async () => {
      try {
        // Until this settles busboy holds the part: its stream is not read, so the socket is not either.
        const target = await this.decide(this.fields, info.filename);
        content.target = target;
        if (this.failure !== undefined) throw this.failure;
        const staging = await this.blobs.stage(target.stagingKey);
        content.staging = staging;
        staging.stream.on('error', () => {});
        if (this.failure !== undefined) throw this.failure;
        // Made in the same tick as pipeline(): `fail` destroys it, and an 'error' of a meter nothing
        // listens to would end the process.
        const meter = new ByteMeter(this.limits.maxFileSize, createHashers(target.hashes));
        content.meter = meter;
        await pipeline(stream, meter, staging.stream);
      } catch (err) {
        stream.resume(); // never leave busboy waiting on an unread file stream
        this.fail(
          ProblemError.is(err) && err.code === 'payload-too-large'
            ? new ProblemError(
                'payload-too-large',
                `The file is larger than this index accepts (${this.limits.maxFileSize} bytes); nothing was stored.`,
                { extensions: { limit: this.limits.maxFileSize } },
              )
            : err,
        );
      }
    })();
  }
}

const tooMany = (what: string) =>
  new ProblemError('body-too-large', `The form has ${what}, more than this index accepts; nothing was stored.`);

/** busboy's error messages are short and safe to show ("Unexpected end of form", "Malformed part header"). */
function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
