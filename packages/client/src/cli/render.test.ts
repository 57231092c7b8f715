// The plain-lines renderer (stdout not a TTY): a line when a file starts, at each quarter, and
// when it is done, so that CI logs stay short.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineRenderer } from './render.js';

function lines(events: Parameters<LineRenderer['event']>[0][]): string[] {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const r = new LineRenderer(out);
  for (const e of events) r.event(e);
  return text.trim().split('\n');
}

const MiB = 1024 * 1024;
const progress = (sent: number) => ({ type: 'progress' as const, filename: 'a.whl', sent, total: 4 * MiB });

describe('LineRenderer', () => {
  it('prints each quarter once per try, again for a transfer tried again', () => {
    const out = lines([
      { type: 'file-start', filename: 'a.whl', size: 4 * MiB, mechanism: 'http-post-bytes', resuming: false },
      progress(1.2 * MiB),
      progress(1.5 * MiB),
      progress(2.5 * MiB),
      progress(3.5 * MiB),
      // The try failed; the next one starts from its first byte.
      progress(0.5 * MiB),
      progress(1.1 * MiB),
      progress(4 * MiB),
    ]);
    expect(out).toEqual([
      'a.whl: uploading 4.0 MiB with http-post-bytes',
      'a.whl: 25% (1.2 MiB of 4.0 MiB)',
      'a.whl: 50% (2.5 MiB of 4.0 MiB)',
      'a.whl: 75% (3.5 MiB of 4.0 MiB)',
      'a.whl: 25% (1.1 MiB of 4.0 MiB)',
    ]);
  });
});
