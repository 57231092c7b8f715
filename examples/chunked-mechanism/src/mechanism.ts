/**
 * `vnd-<operator>-chunked-v1`: the file arrives as ordered chunks, one `PATCH` each, carrying
 * `Upload-Offset`. Every chunk is its own request, so every chunk is authorized (PEP 694 says a
 * multi-request mechanism SHOULD authorize each request). Bytes go to one staging write that stays
 * open between chunks, hashed as they arrive, and are committed with the last chunk.
 *
 * Written only against the published APIs of @pep694/core: the host's services come through
 * MECHANISM_HOST; nothing here imports the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Router } from 'express';
import {
  createHashers,
  ProblemError,
  type CompletionOutcome,
  type FileOffer,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type MechanismInstructions,
  type Negotiation,
  type StagingWrite,
  type TransferStatus,
  type UploadMechanism,
  type VendorMechanismIdentifier,
} from '@pep694/core';
import type { ChunkedPluginOptions } from './options.js';
import { asHttpHandler, inviteBody, refuse } from '@pep694/core/node-http';

/** The options the mechanism takes, as the plugin's schema parses them (index.ts). */
export type ChunkedOptions = Pick<ChunkedPluginOptions, 'chunkSize'>;

interface Upload {
  offset: number;
  staging: StagingWrite;
  hashers: ReturnType<typeof createHashers<HashName>>;
  busy: boolean;
  committed: boolean;
  digests?: Partial<Record<HashName, string>>;
}

export class ChunkedMechanism implements UploadMechanism {
  private readonly uploads = new Map<string, Upload>();

  constructor(
    readonly identifier: VendorMechanismIdentifier,
    private readonly host: MechanismHost,
    private readonly options: ChunkedOptions,
  ) {}

  negotiate(offer: FileOffer): Negotiation {
    // One open staging write per file: keep the number of chunks sane.
    if (offer.size > this.options.chunkSize * 100_000) return { accept: false, reason: 'the file needs more than 100000 chunks' };
    return { accept: true };
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    return {
      identifier: this.identifier,
      chunk_url: `${ctx.baseUrl}/files/${ctx.file.id}`,
      method: 'PATCH',
      offset_header: 'Upload-Offset',
      chunk_size: this.options.chunkSize,
    };
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const upload = this.uploads.get(ctx.file.id);
    if (!upload?.committed) {
      return { kind: 'incomplete', received: upload?.offset ?? 0, detail: `received ${upload?.offset ?? 0} of ${ctx.file.size} bytes` };
    }
    this.uploads.delete(ctx.file.id);
    return { kind: 'received', size: upload.offset, digests: upload.digests ?? {} };
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const upload = this.uploads.get(ctx.file.id);
    return { bytesReceived: upload?.offset ?? 0, active: upload?.busy ?? false };
  }

  async cancel(ctx: FileUploadContext): Promise<void> {
    const upload = this.uploads.get(ctx.file.id);
    this.uploads.delete(ctx.file.id);
    if (upload && !upload.committed) await upload.staging.abort();
  }

  async close(): Promise<void> {
    for (const upload of this.uploads.values()) if (!upload.committed) await upload.staging.abort();
    this.uploads.clear();
  }

  routes(): HttpHandler {
    const router = Router();
    // Every refusal goes through core's `refuse` (rule 3 on UploadMechanism): it answers once the
    // request body is out of the way, so the client gets the answer and the connection stays usable.
    router.patch('/files/:id', (req, res) => {
      let received = 0;
      this.patch(req, res, String(req.params.id), (n) => (received = n)).catch((err: unknown) =>
        refuse(this.host, req, res, err, { consumed: received }),
      );
    });
    router.all('/files/:id', (req, res) => {
      refuse(this.host, req, res, new ProblemError('method-not-allowed', 'Send chunks with PATCH.', { headers: { Allow: 'PATCH' } }));
    });
    return asHttpHandler(router);
  }

  /** `PATCH chunk_url`: one chunk. `progress` is told the bytes read, for a refusal's `consumed`. */
  private async patch(req: IncomingMessage, res: ServerResponse, fileId: string, progress: (received: number) => void): Promise<void> {
    // Every request, first of all: the same credentials and permission as the session API (rule 1).
    const ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
    if (!/^application\/offset\+octet-stream\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new ProblemError('unsupported-media-type', 'Chunks are sent as application/offset+octet-stream.');
    }
    const offset = Number(req.headers['upload-offset']);
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || length < 0) {
      throw new ProblemError('invalid-parameter', 'Each chunk needs numeric Upload-Offset and Content-Length headers.');
    }
    if (length > this.options.chunkSize) throw new ProblemError('payload-too-large', `Chunks are at most ${this.options.chunkSize} bytes.`);
    if (offset + length > ctx.file.size)
      throw new ProblemError('payload-too-large', `The chunk ends at ${offset + length}, past the declared size ${ctx.file.size}.`);

    let upload = this.uploads.get(fileId);
    if (!upload) {
      if (offset !== 0)
        throw new ProblemError('invalid-transition', `Expected Upload-Offset 0, got ${offset}.`, { extensions: { offset: 0 } });
      upload = {
        offset: 0,
        staging: await this.host.blobs.stage(ctx.stagingKey),
        hashers: createHashers(Object.keys(ctx.file.hashes) as HashName[]),
        busy: false,
        committed: false,
      };
      this.uploads.set(fileId, upload);
    }
    if (upload.busy) throw new ProblemError('upload-in-progress', 'Another chunk for this file is being received.');
    if (upload.committed) throw new ProblemError('file-not-pending', 'Every byte has arrived already.');
    if (offset !== upload.offset) {
      throw new ProblemError('invalid-transition', `Expected Upload-Offset ${upload.offset}, got ${offset}.`, {
        extensions: { offset: upload.offset },
      });
    }
    // The host sends no automatic `100 Continue`: invite the chunk now that it is authorized and checked (rule 2).
    inviteBody(req, res);

    upload.busy = true;
    const current = upload;
    let received = 0;
    try {
      // Hash and count as the chunk arrives, writing into the staging stream that stays open for
      // the next chunk (honouring its backpressure; no pipeline, whose listeners would pile up).
      // destroyOnReturn: false, so that leaving the loop on an error does not destroy the request (rule 3).
      for await (const piece of req.iterator({ destroyOnReturn: false })) {
        const chunk = piece as Buffer;
        received += chunk.length;
        progress(received);
        if (received > length) throw new ProblemError('payload-too-large', 'The chunk is longer than its Content-Length.');
        current.hashers.update(chunk);
        if (!current.staging.stream.write(chunk)) await once(current.staging.stream, 'drain');
      }
      if (received !== length) throw new ProblemError('malformed-upload', 'The chunk is shorter than its Content-Length.');
    } catch (err) {
      // A broken chunk leaves the hash state unusable: drop the upload; the client starts over.
      this.uploads.delete(fileId);
      await current.staging.abort();
      throw ProblemError.is(err)
        ? err
        : new ProblemError('malformed-upload', 'The chunk was cut off; start the upload again from offset 0.');
    } finally {
      current.busy = false;
    }
    current.offset += received;
    if (current.offset === ctx.file.size) {
      current.staging.stream.end();
      await current.staging.commit();
      current.digests = current.hashers.digest();
      current.committed = true;
    }
    res.statusCode = 204;
    res.setHeader('Upload-Offset', String(current.offset));
    res.end();
  }
}
