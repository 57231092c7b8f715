/**
 * A small one-POST mechanism for the conformance suite's self-test, correct unless told to carry
 * one defect. Each `*.fixture.ts` beside it runs the suite on one variant; the self-test
 * (`../mechanism-suite.test.ts`) runs them in a child vitest and checks what failed and why.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import {
  createHashers,
  definePlugin,
  MECHANISM,
  MECHANISM_HOST,
  ProblemError,
  vendorIdentifier,
  type CompletionOutcome,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type MechanismInstructions,
  type StagingWrite,
  type TransferStatus,
  type UploadMechanism,
} from '@pep694/core';
import { asHttpHandler } from '@pep694/core/node-http';
import type { ClientHalf } from '../mechanism-suite.js';

export type Defect =
  /** A correct mechanism: the control. */
  | 'none'
  /** Skips the hash check: reports the declared digests instead of hashing the bytes it received. */
  | 'reports-declared-digests'
  /** Mounts its upload route without calling `host.authorizeTransfer`. */
  | 'route-without-auth'
  /** Returns a mechanism map without `identifier`. */
  | 'no-identifier';

interface Transfer {
  received: number;
  staging: StagingWrite;
  req: IncomingMessage;
  done: Promise<void>;
}

class FixtureMechanism implements UploadMechanism {
  readonly identifier = vendorIdentifier('fixture', 'post');
  /** Contexts seen by `instructions`: what a mechanism that skips authorization looks files up in. */
  private readonly known = new Map<string, FileUploadContext>();
  private readonly running = new Map<string, Transfer>();
  private readonly received = new Map<string, { size: number; digests: Partial<Record<HashName, string>> }>();
  private readonly progress = new Map<string, number>();

  constructor(
    private readonly host: MechanismHost,
    private readonly defect: Defect,
  ) {}

  negotiate() {
    return { accept: true } as const;
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    this.known.set(ctx.file.id, ctx);
    const map = { identifier: this.identifier, file_url: `${ctx.baseUrl}/files/${ctx.file.id}` };
    if (this.defect === 'no-identifier') {
      const { identifier: _dropped, ...rest } = map;
      return rest as unknown as MechanismInstructions;
    }
    return map;
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const got = this.received.get(ctx.file.id);
    if (!got) return { kind: 'incomplete', received: this.progress.get(ctx.file.id) ?? 0, detail: 'nothing was uploaded' };
    this.received.delete(ctx.file.id);
    if (this.defect === 'reports-declared-digests') return { kind: 'received', size: got.size, digests: { ...ctx.file.hashes } };
    return { kind: 'received', size: got.size, digests: got.digests };
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const t = this.running.get(ctx.file.id);
    return { bytesReceived: t?.received ?? this.progress.get(ctx.file.id) ?? 0, active: t !== undefined };
  }

  async cancel(ctx: FileUploadContext): Promise<void> {
    const t = this.running.get(ctx.file.id);
    this.received.delete(ctx.file.id);
    this.progress.delete(ctx.file.id);
    this.known.delete(ctx.file.id);
    if (t) {
      t.req.destroy();
      await t.done;
    }
  }

  routes(): HttpHandler {
    const router = Router();
    router.post('/files/:id', (req, res) => {
      this.post(req, res, String(req.params.id)).catch((err: unknown) => this.host.sendProblem(res, err));
    });
    return asHttpHandler(router);
  }

  private async post(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    let ctx: FileUploadContext;
    if (this.defect === 'route-without-auth') {
      const known = this.known.get(fileId);
      if (!known) throw new ProblemError('not-found', 'No such upload.');
      ctx = known;
    } else {
      ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
    }
    if (this.running.has(fileId)) throw new ProblemError('upload-in-progress', 'Another POST is running.');
    const size = ctx.file.size;
    const staging = await this.host.blobs.stage(ctx.stagingKey);
    const hashers = createHashers(Object.keys(ctx.file.hashes) as HashName[]);
    let settle!: () => void;
    const t: Transfer = { received: 0, staging, req, done: new Promise<void>((r) => (settle = r)) };
    this.running.set(fileId, t);
    try {
      await pipeline(
        req,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            if (t.received + chunk.length > size) return cb(new ProblemError('payload-too-large', `More than ${size} bytes.`));
            t.received += chunk.length;
            hashers.update(chunk);
            cb(null, chunk);
          },
        }),
        staging.stream,
      );
      if (t.received !== size) throw new ProblemError('malformed-upload', `Received ${t.received} of ${size} bytes.`);
      await staging.commit();
      this.received.set(fileId, { size: t.received, digests: hashers.digest() });
      this.progress.set(fileId, t.received);
      res.statusCode = 204;
      res.end();
    } catch (err) {
      await staging.abort().catch(() => undefined);
      throw err instanceof ProblemError ? err : new ProblemError('malformed-upload', 'The upload was cut off.');
    } finally {
      this.running.delete(fileId);
      settle();
    }
  }
}

export const fixturePlugin = (defect: Defect) =>
  definePlugin({
    name: `fixture-mechanism (${defect})`,
    coreRange: '^0.1.0',
    options: z.strictObject({}),
    register(container) {
      container.register(MECHANISM, { useFactory: instanceCachingFactory((c) => new FixtureMechanism(c.resolve(MECHANISM_HOST), defect)) });
    },
  });

/** The client half: one POST of the bytes to `file_url`. */
export const fixtureClient: ClientHalf = ({ instructions, body, authorization, signal }) =>
  new Promise<void>((resolve, reject) => {
    const req = http.request(String(instructions.file_url), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...(authorization ? { authorization } : {}) },
      ...(signal ? { signal } : {}),
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`refused with ${res.statusCode}`))));
    });
    const source = body instanceof Readable ? body : Readable.from([Buffer.from(body)]);
    source.on('error', (err) => req.destroy(err));
    source.pipe(req);
  });
