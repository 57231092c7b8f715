/**
 * Sending `104 (Upload Resumption Supported)`, an interim response node's http server has no
 * public API for: `writeContinue` (100), `writeProcessing` (102) and `writeEarlyHints` (103) each
 * send one fixed status, and `writeHead(104)` would be taken as the final response.
 *
 * Node 20 implements those three by handing the raw status line and fields to the response's
 * `_writeRaw`, the internal writer that queues bytes behind a pipelined response still being
 * sent and respects corking; writing to `req.socket` directly would not (a pipelined earlier
 * response could be interleaved). So this does what `writeEarlyHints` does, with 104. When the
 * writer is missing (another runtime, an HTTP/2 compatibility response), no 104 is sent: the draft
 * lets a server that cannot send interim responses skip it, and the client then learns the upload
 * resource from the final response (`Location`).
 */
import type { ServerResponse } from 'node:http';

type RawWriter = (data: string, encoding: BufferEncoding, cb?: () => void) => boolean;

/** Whether `res` can carry a 104 now: node's raw writer is there and no final response has started. */
export function canSendInterim(res: ServerResponse): boolean {
  return typeof (res as unknown as { _writeRaw?: unknown })._writeRaw === 'function' && !res.headersSent && !res.destroyed;
}

/**
 * Sends `HTTP/1.1 104 Upload Resumption Supported` with `fields`; returns whether it was sent.
 * Field names and values are this server's own (a URL it built, numbers); a CR, LF or NUL in one
 * is refused rather than written, which would split the response.
 */
export function send104(res: ServerResponse, fields: Readonly<Record<string, string>>): boolean {
  if (!canSendInterim(res)) return false;
  let head = 'HTTP/1.1 104 Upload Resumption Supported\r\n';
  for (const [name, value] of Object.entries(fields)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw new Error(`not a valid field for a 104: ${name}`);
    head += `${name}: ${value}\r\n`;
  }
  head += '\r\n';
  const writeRaw = (res as unknown as { _writeRaw: RawWriter })._writeRaw;
  writeRaw.call(res, head, 'latin1');
  return true;
}
