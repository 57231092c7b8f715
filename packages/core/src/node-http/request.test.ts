/**
 * `contentLength` on real requests (node's parser, over loopback): a length node accepts but that
 * is past 2^53 must still count as a (huge) length, so that mechanisms refuse it at once (413)
 * instead of taking the request for a chunked one and waiting for its body.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentLength } from './request.js';

let server: Server;
let seen: (value: number | undefined) => void = () => {};
beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    seen(contentLength(req));
    res.writeHead(204, { Connection: 'close' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Sends a request head with `header` and no body; resolves with what `contentLength` said. */
function lengthOf(header: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    seen = resolve;
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(
      `POST / HTTP/1.1\r\nHost: x\r\n${header === undefined ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${header}\r\n`}\r\n`,
    );
    socket.on('close', () => socket.destroy());
    setTimeout(() => socket.destroy(), 1000);
  });
}

describe('contentLength', () => {
  it('is the declared length, and undefined for a chunked body', async () => {
    expect(await lengthOf('0')).toBe(0);
    expect(await lengthOf('12345')).toBe(12345);
    expect(await lengthOf(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(await lengthOf(undefined)).toBeUndefined();
  });

  it.each(['9007199254740992', '18446744073709551615'])(
    'is a length larger than any size for %s (past 2^53, which node accepts), not an unknown one',
    async (header) => {
      const n = await lengthOf(header);
      expect(n).toBeDefined();
      expect(n!).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    },
  );
});
