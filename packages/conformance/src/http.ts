/**
 * The checker's HTTP client. It behaves as PEP 694 asks clients to: it sends the versioned
 * content type, asks for it in `Accept`, uses only links the server gave it, honours
 * `Retry-After` when polling, and reads a 404 on a terminal session's status URL as "gone".
 */
import { UPLOAD_V2_JSON } from '@pep694/core';

export interface Response {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed body when it is JSON, else undefined; read it with `field` (json.ts). */
  readonly json: unknown;
}

export class Client {
  constructor(
    private readonly token: string | undefined,
    private readonly timeoutMs = 30_000,
  ) {}

  withToken(token: string | undefined): Client {
    return new Client(token, this.timeoutMs);
  }

  async request(
    method: string,
    url: string,
    opts: { json?: unknown; body?: Uint8Array; contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: `${UPLOAD_V2_JSON}, application/problem+json;q=0.9`, ...opts.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] = opts.contentType ?? UPLOAD_V2_JSON;
    } else if (opts.body !== undefined) {
      body = opts.body;
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /**
   * Polls `url` until `done(body)` holds, sleeping as `Retry-After` says (bounded). A 404 is
   * returned to the caller, who decides whether it means "gone".
   */
  async poll(url: string, done: (body: unknown) => boolean, maxWaitMs = 60_000): Promise<Response> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      const res = await this.request('GET', url);
      if (res.status !== 200 || done(res.json) || Date.now() > deadline) return res;
      const retry = Number(res.headers.get('retry-after'));
      const waitMs = Number.isFinite(retry) && retry >= 0 ? Math.min(retry * 1000, 10_000) : 1000;
      await new Promise((r) => setTimeout(r, Math.max(waitMs, 50)));
    }
  }
}
