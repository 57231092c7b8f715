import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ByteMeter } from './byte-meter.js';
import { ProblemError } from './problem.js';
import { createHashers, type HashName } from './validate/hashes.js';

/** Pipes `chunks` through `meter` into a sink: what reached the sink, and the pipeline's error. */
async function run(meter: ByteMeter, chunks: Buffer[]): Promise<{ seen: Buffer[]; error: unknown }> {
  const seen: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      seen.push(chunk);
      cb();
    },
  });
  const error = await pipeline(Readable.from(chunks), meter, sink).then(
    () => undefined,
    (err: unknown) => err,
  );
  return { seen, error };
}

describe('ByteMeter', () => {
  it('passes the same buffers on, counting and hashing them with every algorithm', async () => {
    const chunks = [Buffer.from('hello '), Buffer.from('world')];
    const meter = new ByteMeter(11, createHashers<HashName>(['sha256', 'md5']));
    const { seen, error } = await run(meter, chunks);
    expect(error).toBeUndefined();
    expect(seen[0]).toBe(chunks[0]);
    expect(seen[1]).toBe(chunks[1]);
    expect(meter.bytes).toBe(11);
    expect(meter.digests()).toEqual({
      sha256: createHash('sha256').update('hello world').digest('hex'),
      md5: createHash('md5').update('hello world').digest('hex'),
    });
  });

  it('fails with payload-too-large at the chunk that passes the limit, having passed on only what fit', async () => {
    const meter = new ByteMeter(8, createHashers<HashName>(['sha256']));
    const { seen, error } = await run(meter, [Buffer.from('12345'), Buffer.from('6789')]);
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ code: 'payload-too-large', status: 413, extensions: { expected: 8 } });
    expect(meter.bytes).toBe(5);
    expect(Buffer.concat(seen).toString()).toBe('12345');
  });
});
