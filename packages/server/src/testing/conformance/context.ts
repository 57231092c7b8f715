/**
 * What the conformance suite's checks share: the host under test, the mechanism, and helpers that
 * drive a file upload session through the author's client half. Every helper's failure message
 * says what is wrong with the mechanism, not only which value differed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import type { BlobStore, MechanismMap, MechanismPlugin, UploadMechanism } from '@pep694/core';
import { api, META, TEST_TOKENS, type ApiResponse, type startTestServer, type TestServer } from '../harness.js';
import type { RecordingBlobStore } from './recording-blob-store.js';

/** Executes a mechanism's instructions for the given bytes; rejects when the server refuses. */
export type ClientHalf = (args: {
  readonly instructions: MechanismMap;
  /** The bytes, as a buffer or as a stream of exactly `size` bytes. */
  readonly body: Uint8Array | Readable;
  readonly size: number;
  /** The Authorization header value, or undefined to send none. */
  readonly authorization: string | undefined;
  readonly signal?: AbortSignal;
  /**
   * Send every request through this agent (node's `agent` option) when given: the rule 2 check
   * passes one that adds `Expect: 100-continue` on the way. A client half that ignores it fails
   * that check, saying so.
   */
  readonly agent?: http.Agent;
}) => Promise<void>;

export interface MechanismConformanceOptions<O> {
  readonly plugin: MechanismPlugin<O>;
  readonly options?: unknown;
  /**
   * The blob store the host runs on, and how to release it after the suite. Default: a fresh
   * filesystem store in a temporary directory. For mechanisms that need a particular backend
   * (object storage they hand clients URLs of).
   */
  readonly blobs?: () => Promise<{ readonly store: BlobStore; close(): Promise<void> }>;
  /** The plugin's options made from that blob store (for a mechanism that takes it as an option); replaces `options`. */
  readonly optionsFor?: (blobs: BlobStore) => unknown;
  readonly client: ClientHalf;
  /** Offers the mechanism is documented to decline, e.g. `[{ size: 10 * 2 ** 30 }]`. */
  readonly declines?: readonly { readonly size?: number; readonly filename?: string }[];
  /** Size of the "multi-megabyte" file; default 5 MiB. */
  readonly largeSize?: number;
  /** Overrides of the host config, e.g. file size limits. */
  readonly config?: Parameters<typeof startTestServer>[0] extends infer T ? (T extends { config?: infer C } ? C : never) : never;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
export const bearer = (token: string): string => `Bearer ${token}`;

/** A file upload session as the API answered it, with what the checks need of it. */
export interface FileSession {
  readonly session: any;
  readonly file: any;
  readonly filename: string;
  /** The file upload session ID (its staging key is `staging/<id>`). */
  readonly id: string;
}

export interface RunOptions {
  /** `null` sends no credentials; default alice's. */
  readonly token?: string | null;
  readonly signal?: AbortSignal;
  readonly agent?: http.Agent;
}

export class SuiteContext {
  t!: TestServer;
  blobs!: RecordingBlobStore;
  identifier!: string;
  private n = 0;

  constructor(readonly suite: MechanismConformanceOptions<unknown>) {}

  get mechanism(): UploadMechanism {
    return this.t.server.mechanisms[0]!;
  }

  /** A fresh project name, so tests stay independent. */
  project(prefix = 'conformance'): string {
    return `${prefix}-${++this.n}`;
  }

  /** A fresh session (a new project each time) and a file upload session for `bytes`. */
  async fileSession(bytes: Uint8Array, opts: { hashes?: Record<string, string>; size?: number } = {}): Promise<FileSession> {
    const project = this.project();
    const s = await api('POST', this.t.url, { body: { meta: META, name: project, version: '1.0' } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const filename = `${project.replace(/-/g, '_')}-1.0.tar.gz`;
    const f = await this.createFile(s.body, filename, opts.size ?? bytes.length, opts.hashes ?? { sha256: sha256(bytes) });
    if (f.status !== 202) {
      const why = f.status >= 500 ? await this.diagnoseInstructions() : '';
      expect(f.status, `creating a file upload session failed${why ? ` because ${why}` : ''}: ${JSON.stringify(f.body)}`).toBe(202);
    }
    return { session: s.body, file: f.body, filename, id: String(f.body.links['file-upload-session']).split('/').pop()! };
  }

  createFile(session: any, filename: string, size: number, hashes: Record<string, string>): Promise<ApiResponse> {
    return api('POST', session.links.upload, { body: { meta: META, filename, size, hashes, mechanism: this.identifier } });
  }

  complete(file: any): Promise<ApiResponse> {
    return api('POST', file.links.complete, { body: { meta: META } });
  }

  async status(file: any): Promise<any> {
    return (await api('GET', file.links['file-upload-session'])).body;
  }

  /** Waits while the file is `processing` (deferred verification). */
  async settled(file: any): Promise<string> {
    for (let i = 0; i < 100 && (await this.status(file)).status === 'processing'; i++) await new Promise((r) => setTimeout(r, 50));
    return (await this.status(file)).status;
  }

  /** Runs the client half on `file`'s instructions. */
  run(file: any, body: Uint8Array | Readable, size: number, opts: RunOptions = {}): Promise<void> {
    const token = opts.token === undefined ? TEST_TOKENS.alice : opts.token;
    return this.suite.client({
      instructions: file.mechanism,
      body,
      size,
      authorization: token ? bearer(token) : undefined,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
  }

  /** The absolute URLs of the mechanism's routes the instructions name. */
  instructionUrls(file: any): string[] {
    return Object.values(file.mechanism as Record<string, unknown>).filter(
      (v): v is string => typeof v === 'string' && v.startsWith(this.t.origin),
    );
  }

  /**
   * A refusal is the client rejecting, or completion failing into error afterwards. `defect`
   * says what is wrong when neither happens: it is the failure message.
   */
  async expectRefusedOrError(file: any, attempt: () => Promise<void>, defect: string): Promise<void> {
    const refused = await attempt().then(
      () => false,
      () => true,
    );
    if (refused) return;
    const done = await this.complete(file);
    expect(done.status, `${defect} (POST links.complete answered ${done.status})`).toBeGreaterThanOrEqual(400);
    const after = (await this.status(file)).status;
    expect(after, `${defect} (the file is ${after}, not error)`).toBe('error');
  }

  /** The client half must reject: the mechanism's route refused the request (rule 1). */
  async expectRefused(attempt: () => Promise<void>, what: string): Promise<void> {
    const accepted = await attempt().then(
      () => true,
      () => false,
    );
    expect(
      accepted,
      `rule 1: ${what} was accepted: every route the mechanism mounts must call host.authorizeTransfer on every request, before it takes any bytes`,
    ).toBe(false);
  }

  /** Why the host refused the mechanism's instructions (it answers 500 for a bad map), or ''. */
  async diagnoseInstructions(): Promise<string> {
    let map: Record<string, unknown> | undefined;
    try {
      map = (await this.probeInstructions()) as Record<string, unknown> | undefined;
    } catch (err) {
      return `the mechanism's instructions() threw: ${String(err)}`;
    }
    if (map?.identifier === undefined)
      return `instructions carry no identifier: the mechanism map must include "identifier": "${this.identifier}" (it returned ${JSON.stringify(map)})`;
    if (map.identifier !== this.identifier)
      return `instructions carry the identifier ${JSON.stringify(map.identifier)}, not the mechanism's own "${this.identifier}"`;
    return '';
  }

  /** The `mechanism` map the mechanism itself returns, for a diagnosis when the host refused it. */
  private async probeInstructions(): Promise<unknown> {
    const id = `conformance-probe-${randomBytes(8).toString('hex')}`;
    const ctx = {
      session: { id: 'conformance-probe', project: 'conformance-probe', version: '1.0' },
      file: {
        id,
        filename: 'conformance_probe-1.0.tar.gz',
        size: 1,
        hashes: { sha256: sha256(Buffer.from('x')) },
        status: 'pending' as const,
        expiresAt: new Date(Date.now() + 3_600_000),
      },
      baseUrl: `${this.t.url}mechanisms/${this.identifier}`,
      stagingKey: `staging/${id}`,
    };
    try {
      return await this.mechanism.instructions(ctx);
    } finally {
      await this.mechanism.cancel?.(ctx).catch(() => undefined);
    }
  }
}

/** A stream of `bytes` that pauses between chunks, so a test can act mid-transfer. */
export function slowStream(bytes: Uint8Array, chunk: number, delayMs: number, onChunk?: (sent: number) => void): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes.length) {
        this.push(null);
        return;
      }
      setTimeout(() => {
        const next = bytes.subarray(sent, sent + chunk);
        sent += next.length;
        onChunk?.(sent);
        this.push(next);
      }, delayMs);
    },
  });
}
