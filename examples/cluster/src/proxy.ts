/**
 * A round-robin reverse proxy on loopback, the load balancer of the cluster: each request goes to
 * the next node that is up, its body streamed both ways (nothing buffered), `Expect: 100-continue`
 * passed through (the client gets `100 Continue` only when the node sends it, after the node has
 * authorized the request: see the server's rule that no body is invited before that), and
 * `X-Forwarded-For`/`-Proto`/`-Host` added. The nodes build their links on `PEP694_PUBLIC_URL`
 * (this proxy's origin); they never read `X-Forwarded-*`.
 *
 * Why not http-proxy (or http-proxy-3): a node server without a `checkContinue` listener answers
 * `100 Continue` itself, at once, so the client would stream a body that the node may refuse;
 * and http-proxy does not relay the node's own `100 Continue`. Both take a few lines here.
 *
 * Around the round robin, what a real balancer does:
 * - health checks: `GET /readyz` on every node each `healthInterval`; a node that is not ready,
 *   or that refused a connection, is skipped until it answers again;
 * - a request without a body that could not connect to its node is sent to the next one;
 * - upload affinity, only when asked for (`pinned`: which mechanism routes to pin; none by
 *   default): the upload of a matching mechanism stays on the node that took its first request,
 *   and so do the completion, cancel and status of its file. The cluster pins nothing: the
 *   resumable mechanism's uploads are in one directory all nodes share, its appends kept apart by
 *   PostgreSQL advisory locks; tus keeps its uploads in the bucket and their locks in PostgreSQL,
 *   so any node continues one (see docs/scaling.md).
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend {
  /** The node's name (`PEP694_NODE_ID`), for logs and the `X-Cluster-Backend` header. */
  readonly name: string;
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
}

export interface ProxyOptions {
  /** Root path of the Upload 2.0 API on the nodes (default `/upload/`), for upload affinity. */
  readonly rootPath?: string;
  /** Mechanism identifiers whose uploads stay on the node of their first request (default: none). */
  readonly pinned?: RegExp;
  /** Milliseconds between health checks (default 1000). */
  readonly healthInterval?: number;
  /** Called with one line per event worth logging (node up/down). */
  readonly log?: (line: string) => void;
}

interface Member extends Backend {
  up: boolean;
  readonly agent: Agent;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are not forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  );
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k) && !named.has(k)));
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

export class RoundRobinProxy {
  private readonly members: Member[] = [];
  private next = 0;
  /** File id → the node its pinned upload lives on. */
  private readonly pins = new Map<string, Member>();
  private readonly server: Server;
  private readonly rootPath: string;
  private readonly pinned: RegExp | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Requests forwarded per node name. */
  readonly forwarded = new Map<string, number>();
  /**
   * The latest answers (up to 1000), oldest first, each with the node that answered as the node
   * itself says (`X-PEP694-Node`, absent when the node has no `PEP694_NODE_ID`): what the tests
   * check the rotation with. Clear it with `history.length = 0`.
   */
  readonly history: { method: string; path: string; status: number; node: string | undefined }[] = [];

  constructor(private readonly options: ProxyOptions = {}) {
    this.rootPath = options.rootPath ?? '/upload/';
    this.pinned = options.pinned;
    // No requestTimeout: uploads take as long as they take; the nodes enforce their own limits.
    this.server = createServer({ requestTimeout: 0 }, (req, res) => this.handle(req, res));
    // Without this listener node would answer `100 Continue` itself before the node decides.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  /** Adds a node (up until a health check or a refused connection says otherwise). */
  add(backend: Backend): void {
    this.members.push({ ...backend, up: true, agent: new Agent({ keepAlive: true, maxSockets: 256 }) });
  }

  /** Takes a node out of the rotation for good (it was stopped). */
  remove(name: string): void {
    const i = this.members.findIndex((m) => m.name === name);
    if (i >= 0) this.members.splice(i, 1)[0]!.agent.destroy();
  }

  /** The nodes, and whether each is in the rotation now. */
  get backends(): readonly { name: string; origin: string; up: boolean }[] {
    return this.members.map(({ name, origin, up }) => ({ name, origin, up }));
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, resolve);
    });
    const interval = this.options.healthInterval ?? 1000;
    this.timer = setInterval(() => void this.checkHealth(), interval);
    this.timer.unref();
    const { port: bound } = this.server.address() as AddressInfo;
    return `http://${host}:${bound}`;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    for (const m of this.members) m.agent.destroy();
  }

  /** One round of health checks: `/readyz` must answer 200 within a second. */
  async checkHealth(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        const ready = await fetch(`${m.origin}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
          async (res) => {
            await res.body?.cancel();
            return res.status === 200;
          },
          () => false,
        );
        this.mark(m, ready);
      }),
    );
  }

  private mark(m: Member, up: boolean): void {
    if (m.up === up) return;
    m.up = up;
    this.options.log?.(`${m.name} ${up ? 'is back in the rotation' : 'is out of the rotation'}`);
  }

  /** The file id whose upload is pinned (mechanism routes), or whose file request follows a pin. */
  private affinity(path: string): { fileId: string; mechanism: boolean } | undefined {
    if (!path.startsWith(this.rootPath)) return undefined;
    const rest = path.slice(this.rootPath.length).split('?')[0]!.split('/');
    if (!this.pinned) return undefined;
    if (rest[0] === 'mechanisms' && rest[2] === 'files' && rest[3] && this.pinned.test(rest[1] ?? ''))
      return { fileId: decodeURIComponent(rest[3]), mechanism: true };
    if (rest[0] === 'files' && rest[1]) return { fileId: decodeURIComponent(rest[1]), mechanism: false };
    if (rest[0] === 'stage' && rest[2] === 'files' && rest[3]) return { fileId: decodeURIComponent(rest[3]), mechanism: false };
    return undefined;
  }

  private pick(path: string, skip: ReadonlySet<Member>): Member | undefined {
    const pin = this.affinity(path);
    const pinnedTo = pin && this.pins.get(pin.fileId);
    if (pinnedTo?.up && !skip.has(pinnedTo) && this.members.includes(pinnedTo)) return pinnedTo;
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[this.next++ % this.members.length]!;
      if (m.up && !skip.has(m)) {
        if (pin?.mechanism) this.pins.set(pin.fileId, m);
        return m;
      }
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse, tried: Set<Member> = new Set()): void {
    const target = this.pick(req.url ?? '/', tried);
    if (!target) {
      problem(res, 503, 'No node of the cluster is up.');
      return;
    }
    tried.add(target);
    this.forwarded.set(target.name, (this.forwarded.get(target.name) ?? 0) + 1);
    const headers = forwardable(req.headers);
    const peer = req.socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${String(headers['x-forwarded-for'])}, ${peer}` : peer;
    headers['x-forwarded-proto'] = 'http';
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;

    const url = new URL(target.origin);
    const upstream = request({
      host: url.hostname,
      port: url.port,
      method: req.method,
      path: req.url,
      headers,
      agent: target.agent,
    });
    let answered = false;
    upstream.on('continue', () => res.writeContinue());
    upstream.on('information', (info) => {
      // Node relays only these interim responses; others (the resumable draft's 104) are dropped,
      // which RFC 9110 §15.2 allows of an intermediary whose client did not ask for them.
      if (info.statusCode === 102) res.writeProcessing();
    });
    upstream.on('response', (answer) => {
      answered = true;
      const node = answer.headers['x-pep694-node'];
      this.history.push({
        method: req.method ?? '',
        path: req.url ?? '',
        status: answer.statusCode ?? 0,
        node: typeof node === 'string' ? node : undefined,
      });
      if (this.history.length > 1000) this.history.shift();
      const out = forwardable(answer.headers);
      out['x-cluster-backend'] = target.name;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return void res.destroy();
      if (err.code === 'ECONNREFUSED') {
        this.mark(target, false);
        // Nothing reached the node: a request without a body can go to the next one.
        if (!hasBody(req) && !res.headersSent) return this.handle(req, res, tried);
      }
      if (!res.headersSent) problem(res, 502, `${target.name} did not answer (${err.code ?? err.message}); try again.`);
      else res.destroy();
    });
    // The client went away: so does the request to the node.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    // A request without a body is ended at once (a retried one's stream has ended already).
    if (hasBody(req)) req.pipe(upstream);
    else upstream.end();
  }
}

function problem(res: ServerResponse, status: number, detail: string): void {
  const body = JSON.stringify({ type: 'about:blank', title: status === 503 ? 'Service Unavailable' : 'Bad Gateway', status, detail });
  res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}
