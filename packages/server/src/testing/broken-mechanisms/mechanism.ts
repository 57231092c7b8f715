/**
 * A small one-POST mechanism for the conformance suite's self-test, correct unless told to carry
 * one defect. Each `*.fixture.ts` beside it runs the suite on one variant; the self-test
 * (`../mechanism-suite.test.ts`) runs them in a child vitest and checks what failed and why.
 * The correct variant follows the rules on `UploadMechanism` with core's low-level helpers
 * (`inviteBody`, `refuse`, `ByteMeter`), so that each defect is one line away from it.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import {
  ByteMeter,
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
  type TransferStatus,
  type UploadMechanism,
} from '@pep694/core';
import { asHttpHandler, inviteBody, refuse } from '@pep694/core/node-http';
import type { ClientHalf } from '../mechanism-suite.js';

export type Defect =
  /** A correct mechanism: the control. */
  | 'none'
  /** Skips the hash check: reports the declared digests instead of hashing the bytes it received (rule 6). */
  | 'reports-declared-digests'
  /** Mounts its upload route without calling `host.authorizeTransfer` (rule 1). */
  | 'route-without-auth'
  /** Returns a mechanism map without `identifier`. */
  | 'no-identifier'
  /** Sends `100 Continue` before authorizing (rule 2). */
  | 'continue-before-auth'
  /** Never sends `100 Continue`, so a client that waits for it waits forever (rule 2). */
  | 'no-continue'
  /**
   * Receives with `pipeline(req, …)`, which destroys the request when the body is refused
   * mid-way: the rest is never drained, and the client loses the answer (rule 3).
   */
  | 'no-drain'
  /** Stages the bytes under a key of its own and moves them to the staging key (rule 4). */
  | 'writes-outside-staging'
  /** Forgets to drop in `cancel` what `instructions` prepared (rule 5). */
  | 'cancel-leaves-prepared';

interface Transfer {
  readonly meter: ByteMeter;
  done: Promise<void>;
}

class FixtureMechanism implements UploadMechanism {
  readonly identifier = vendorIdentifier('fixture', 'post');
  /** What `instructions` prepared, per file: what a mechanism that skips authorization looks files up in, and what `sweep` removes. */
  private readonly prepared = new Map<string, FileUploadContext>();
  private readonly running = new Map<string, Transfer>();
  private readonly received = new Map<string, { size: number; digests: Partial<Record<HashName, string>> }>();

  constructor(
    private readonly host: MechanismHost,
    private readonly defect: Defect,
  ) {}

  negotiate() {
    return { accept: true } as const;
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    this.prepared.set(ctx.file.id, ctx);
    const map = { identifier: this.identifier, file_url: `${ctx.baseUrl}/files/${ctx.file.id}` };
    if (this.defect === 'no-identifier') {
      const { identifier: _dropped, ...rest } = map;
      return rest as unknown as MechanismInstructions;
    }
    return map;
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const got = this.received.get(ctx.file.id);
    if (!got) return { kind: 'incomplete', received: this.running.get(ctx.file.id)?.meter.bytes ?? 0, detail: 'nothing was uploaded' };
    this.received.delete(ctx.file.id);
    if (this.defect === 'reports-declared-digests') return { kind: 'received', size: got.size, digests: { ...ctx.file.hashes } };
    return { kind: 'received', size: got.size, digests: got.digests };
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const t = this.running.get(ctx.file.id);
    return { bytesReceived: t?.meter.bytes ?? this.received.get(ctx.file.id)?.size ?? 0, active: t !== undefined };
  }

  async cancel(ctx: FileUploadContext): Promise<void> {
    const t = this.running.get(ctx.file.id);
    this.received.delete(ctx.file.id);
    if (this.defect !== 'cancel-leaves-prepared') this.prepared.delete(ctx.file.id);
    if (t) {
      t.meter.destroy(new ProblemError('file-not-pending', 'The file upload session was canceled during this transfer.'));
      await t.done;
    }
  }

  async sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const id of [...this.prepared.keys()]) {
      if (this.running.has(id) || (await keep(id))) continue;
      this.prepared.delete(id);
      removed++;
    }
    return removed;
  }

  routes(): HttpHandler {
    const router = Router();
    router.post('/files/:id', (req, res) => void this.post(req, res, String(req.params.id)));
    return asHttpHandler(router);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): void {
    refuse(this.host, req, res, err, { consumed });
  }

  private async post(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    req.on('error', () => {});
    if (this.defect === 'continue-before-auth') inviteBody(req, res);
    let ctx: FileUploadContext;
    try {
      if (this.defect === 'route-without-auth') {
        const known = this.prepared.get(fileId);
        if (!known) throw new ProblemError('not-found', 'No such upload.');
        ctx = known;
      } else {
        ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
      }
      if (this.running.has(fileId)) throw new ProblemError('upload-in-progress', 'Another POST is running.');
    } catch (err) {
      return this.refuse(req, res, err);
    }
    if (this.defect !== 'no-continue') inviteBody(req, res);
    const size = ctx.file.size;
    const key = this.defect === 'writes-outside-staging' ? `uploads/${fileId}` : ctx.stagingKey;
    const meter = new ByteMeter(size, createHashers(Object.keys(ctx.file.hashes) as HashName[]));
    let settle!: () => void;
    const t: Transfer = { meter, done: new Promise<void>((r) => (settle = r)) };
    this.running.set(fileId, t);
    req.once('close', () => {
      if (!req.complete) meter.destroy(new ProblemError('malformed-upload', 'The client went away.'));
    });
    try {
      const staging = await this.host.blobs.stage(key);
      try {
        if (this.defect === 'no-drain') await pipeline(req, meter, staging.stream);
        else await pipeline(req.pipe(meter), staging.stream);
        if (meter.bytes !== size) throw new ProblemError('malformed-upload', `Received ${meter.bytes} of ${size} bytes.`);
        await staging.commit();
      } catch (err) {
        await staging.abort().catch(() => undefined);
        throw err;
      }
      if (key !== ctx.stagingKey) await this.host.blobs.move(key, ctx.stagingKey);
      this.received.set(fileId, { size: meter.bytes, digests: meter.digests() });
      res.statusCode = 204;
      res.end();
    } catch (err) {
      req.unpipe(meter);
      const problem = ProblemError.is(err) ? err : new ProblemError('malformed-upload', 'The upload was cut off.');
      this.refuse(req, res, problem, meter.bytes);
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

/** The client half: one POST of the bytes to `file_url`, through the given agent (else a connection of its own). */
export const fixtureClient: ClientHalf = ({ instructions, body, authorization, signal, agent }) =>
  new Promise<void>((resolve, reject) => {
    const req = http.request(String(instructions.file_url), {
      method: 'POST',
      agent: agent ?? false,
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
