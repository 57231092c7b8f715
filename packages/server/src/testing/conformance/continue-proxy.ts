/**
 * How the conformance suite checks the second half of rule 2 on `UploadMechanism` (a body the
 * route wants is invited) with any client half: a TCP proxy in front of the host that adds
 * `Expect: 100-continue` to every request with a body and holds the body back until the server
 * answers, as a client honouring `Expect` would. A route that reads a body without inviting it
 * then waits for bytes that never come; the proxy notes that after `waitMs` and cuts both sides.
 *
 * The client half sends its requests through `agent` (node's `agent` option), which opens a new
 * connection to the proxy for each request, whatever the URL names.
 */
import http from 'node:http';
import net from 'node:net';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** Whether it had a body (and so was sent with `Expect: 100-continue`). */
  readonly withBody: boolean;
  /** What the server did: invited the body, answered without it, or neither within `waitMs`. */
  outcome: 'pending' | 'continued' | 'answered' | 'stalled' | 'no-body';
  /** The status of the answer that came instead of `100 Continue`. */
  status?: number;
}

export interface ContinueProxy {
  readonly agent: http.Agent;
  readonly requests: readonly ProxiedRequest[];
  close(): Promise<void>;
}

/** An agent whose every connection goes to `port` on loopback, one request each (no keep-alive). */
class FixedPortAgent extends http.Agent {
  constructor(private readonly port: number) {
    super({ keepAlive: false });
  }
  override createConnection(): net.Socket {
    return net.connect(this.port, '127.0.0.1');
  }
}

const END_OF_HEAD = Buffer.from('\r\n\r\n');

export async function startContinueProxy(target: { readonly host: string; readonly port: number }, waitMs: number): Promise<ContinueProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let phase: 'head' | 'holding' | 'open' | 'answered' = 'head';
    let head = Buffer.alloc(0);
    let answerHead = Buffer.alloc(0);
    let held: Buffer[] = [];
    let request: ProxiedRequest | undefined;
    let timer: NodeJS.Timeout | undefined;

    client.on('data', (chunk: Buffer) => {
      if (phase === 'open') return void upstream.write(chunk);
      if (phase === 'answered') return; // the body of a request answered without it: dropped
      if (phase === 'holding') return void held.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(END_OF_HEAD);
      if (end < 0) return;
      const text = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + END_OF_HEAD.length);
      const [requestLine = '', ...lines] = text.split('\r\n');
      const [method = '', path = ''] = requestLine.split(' ');
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const withBody = Number(headers.get('content-length') ?? 0) > 0 || /chunked/i.test(headers.get('transfer-encoding') ?? '');
      request = { method, path, withBody, outcome: withBody ? 'pending' : 'no-body' };
      requests.push(request);
      if (!withBody || headers.has('expect')) {
        phase = 'open';
        upstream.write(head);
        return;
      }
      upstream.write(Buffer.from(`${text}\r\nExpect: 100-continue\r\n\r\n`, 'latin1'));
      phase = 'holding';
      if (rest.length > 0) held.push(rest);
      timer = setTimeout(() => {
        request!.outcome = 'stalled';
        client.destroy();
      }, waitMs);
    });

    upstream.on('data', (chunk: Buffer) => {
      if (phase !== 'holding') return void client.write(chunk);
      answerHead = Buffer.concat([answerHead, chunk]);
      const end = answerHead.indexOf(END_OF_HEAD);
      if (end < 0) return;
      clearTimeout(timer);
      const status = Number(answerHead.subarray(9, 12).toString('latin1'));
      if (status === 100) {
        // Invited: the held body goes on; the client, which did not ask, never sees the 100.
        request!.outcome = 'continued';
        phase = 'open';
        for (const piece of held) upstream.write(piece);
        held = [];
        const after = answerHead.subarray(end + END_OF_HEAD.length);
        if (after.length > 0) client.write(after);
      } else {
        request!.outcome = 'answered';
        request!.status = status;
        phase = 'answered';
        client.write(answerHead);
      }
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new FixedPortAgent((server.address() as net.AddressInfo).port);
  return {
    agent,
    requests,
    close: async () => {
      agent.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
