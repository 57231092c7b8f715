/**
 * `OneRequestRoute`: what a one-request mechanism's route does around its receiver, over real
 * loopback HTTP with a test host and a receiver that collects the body in memory.
 */
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../ports.js';
import { ProblemError } from '../problem.js';
import { OneRequestRoute, type OneRequestSteps, type OneRequestUpload, type TransferLimits } from './one-request-route.js';
import { OK_AUTH, send, serve, testHost, type Served } from './test-support.js';
import { OneRequestTransfers, type ReceivedBytes } from './transfers.js';

let served: Served | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

const LIMITS: TransferLimits = { idleTimeout: 0, minRate: 0, linger: { bytes: 1024 * 1024, ms: 2000 } };
const noBlobs = { size: async () => undefined } as unknown as BlobStore;

interface Events {
  checked: number;
  received: Buffer[];
  /** What the receiver saw when it started: whether the client had gone. */
  goneAtStart?: boolean;
}

/** A receiver that collects the body (up to `size` bytes), can be stopped, and reports `{ size }`. */
function collect(
  events: Events,
  opts: { check?: (req: IncomingMessage) => void; holdUntil?: Promise<void> } = {},
): OneRequestSteps<ReceivedBytes> {
  return {
    check(req) {
      events.checked++;
      opts.check?.(req);
    },
    async receive(u: OneRequestUpload) {
      events.goneAtStart = u.gone;
      let bytes = 0;
      const stopWatching = u.watchIdle();
      try {
        return await new Promise<ReceivedBytes>((resolve, reject) => {
          u.transfer.attach(() => bytes, reject);
          u.onGone(() => reject(new ProblemError('malformed-upload', 'gone')));
          u.req.on('data', (c: Buffer) => {
            bytes += c.length;
            events.received.push(c);
            if (bytes > u.ctx.file.size) reject(new ProblemError('payload-too-large', 'too long'));
          });
          u.req.on('end', () => void (opts.holdUntil ?? Promise.resolve()).then(() => resolve({ size: bytes, digests: {} })));
        });
      } finally {
        stopWatching();
      }
    },
  };
}

async function start(steps: OneRequestSteps<ReceivedBytes>, limits: TransferLimits = LIMITS, size = 10) {
  const host = testHost(size);
  const transfers = new OneRequestTransfers(noBlobs, 'POST the file');
  const route = new OneRequestRoute({ host, identifier: 'test', transfers, limits, again: 'POST the file again.' });
  served = await serve((req, res) => void route.serve(req, res, 'f1', steps));
  return { host, transfers, url: served.url };
}

const code = (body: string) => (JSON.parse(body) as { code: string }).code;
const ctxOf = (size: number) => ({ file: { id: 'f1', size } }) as Parameters<OneRequestTransfers['status']>[0];

describe('OneRequestRoute', () => {
  it('authorizes, invites the body, receives it, answers 204 and records what was committed', async () => {
    const events: Events = { checked: 0, received: [] };
    const { transfers, url } = await start(collect(events));
    const answer = await send(url, { auth: OK_AUTH, body: Buffer.from('0123456789'), expect: true });
    expect(answer).toMatchObject({ status: 204, continued: true });
    expect(events.checked).toBe(1);
    expect(Buffer.concat(events.received).toString()).toBe('0123456789');
    expect(await transfers.status(ctxOf(10))).toEqual({ bytesReceived: 10, active: false });
  });

  it('rule 1: refuses an unauthorized request before checking or reading it, and without inviting its body (rule 2)', async () => {
    const events: Events = { checked: 0, received: [] };
    const { url } = await start(collect(events));
    const answer = await send(url, { body: Buffer.from('0123456789'), expect: true });
    expect(answer).toMatchObject({ status: 401, continued: false });
    expect(code(answer.body)).toBe('unauthenticated');
    expect(events).toEqual({ checked: 0, received: [] });
  });

  it("refuses what the mechanism's check throws, without reading the body", async () => {
    const events: Events = { checked: 0, received: [] };
    const { url } = await start(
      collect(events, {
        check: () => {
          throw new ProblemError('unsupported-media-type', 'not this type');
        },
      }),
    );
    const answer = await send(url, { auth: OK_AUTH, body: Buffer.from('0123456789') });
    expect(answer.status).toBe(415);
    expect(events.received).toEqual([]);
  });

  it('refuses a second request for the file while one runs (409 upload-in-progress), then serves the next', async () => {
    let release!: () => void;
    const holdUntil = new Promise<void>((resolve) => (release = resolve));
    const events: Events = { checked: 0, received: [] };
    const { url } = await start(collect(events, { holdUntil }));
    const first = send(url, { auth: OK_AUTH, body: Buffer.from('0123456789') });
    while (events.received.length === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await send(url, { auth: OK_AUTH, body: Buffer.from('0123456789') });
    expect(second.status).toBe(409);
    expect(code(second.body)).toBe('upload-in-progress');
    release();
    expect((await first).status).toBe(204);
    expect((await send(url, { auth: OK_AUTH, body: Buffer.from('0123456789') })).status).toBe(204);
  });

  it('refuses what the receiver rejects with, keeps the connection, and records nothing', async () => {
    const events: Events = { checked: 0, received: [] };
    const { transfers, url } = await start(collect(events), LIMITS, 10);
    const answer = await send(url, { auth: OK_AUTH, body: Buffer.alloc(100_000), chunked: true });
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).not.toBe('close');
    expect(transfers.has('f1')).toBe(true);
    expect(await transfers.status(ctxOf(10))).toEqual({ bytesReceived: 0, active: false });
  });

  it('stops a transfer that stalls with 408 request-timeout (the idle watch)', async () => {
    const events: Events = { checked: 0, received: [] };
    const { url } = await start(collect(events), { ...LIMITS, idleTimeout: 200, linger: { bytes: 1024, ms: 100 } });
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // Declares 10 bytes, sends 3, then nothing.
      void import('node:http').then(({ request }) => {
        const req = request(url, { method: 'POST', agent: false, headers: { authorization: OK_AUTH, 'content-length': '10' } });
        req.on('error', reject);
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        });
        req.write('abc');
      });
    });
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'request-timeout', detail: expect.stringMatching(/POST the file again\./) });
  });

  it('refuses new transfers with 503 unavailable once the transfers are closed', async () => {
    const events: Events = { checked: 0, received: [] };
    const { transfers, url } = await start(collect(events));
    await transfers.close();
    const answer = await send(url, { auth: OK_AUTH, body: Buffer.from('0123456789') });
    expect(answer.status).toBe(503);
    expect(events.received).toEqual([]);
  });
});
