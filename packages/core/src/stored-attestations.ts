/**
 * Attestations a mechanism accepted for a file, kept durable until completion. A mechanism that
 * answers an attestations upload with success must not lose them to a restart before the client
 * completes the file, so they are committed (fsynced, like any blob) to the host's blob store under
 * `attestations/{file id}` before the answer, and read back at completion when the mechanism has
 * no copy in memory. After completion the host holds them in the file's record.
 *
 * Used by the first-party http-post-bytes and multipart mechanisms; any mechanism may use it.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AcceptedAttestations } from './attestation-verifier.js';
import type { BlobStore } from './ports.js';

export class StoredAttestations {
  /** The blob-key prefix under which they are kept. */
  static readonly PREFIX = 'attestations/';

  constructor(private readonly blobs: BlobStore) {}

  private key(fileId: string): string {
    return `${StoredAttestations.PREFIX}${fileId}`;
  }

  /** Commits `attestations` for `fileId`, replacing earlier ones atomically. */
  async save(fileId: string, attestations: AcceptedAttestations): Promise<void> {
    const staging = await this.blobs.stage(this.key(fileId));
    try {
      await pipeline(Readable.from([Buffer.from(JSON.stringify(attestations), 'utf8')]), staging.stream);
      await staging.commit();
    } catch (err) {
      await staging.abort();
      throw err;
    }
  }

  /** The attestations committed for `fileId`, or undefined when there are none. */
  async load(fileId: string): Promise<AcceptedAttestations | undefined> {
    if ((await this.blobs.size(this.key(fileId))) === undefined) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.blobs.read(this.key(fileId))) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as AcceptedAttestations;
  }

  /** Forgets the attestations of `fileId` (none is fine: then nothing is written). */
  async delete(fileId: string): Promise<void> {
    if ((await this.blobs.size(this.key(fileId))) === undefined) return;
    await this.blobs.delete(this.key(fileId));
  }

  /**
   * Deletes those of every file for which `keep` is false (for `UploadMechanism.sweep`: the host
   * keeps files that are still pending or processing). Returns how many it deleted.
   */
  async sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for await (const key of this.blobs.list(StoredAttestations.PREFIX)) {
      const fileId = key.slice(StoredAttestations.PREFIX.length);
      if (await keep(fileId)) continue;
      await this.blobs.delete(key);
      removed++;
    }
    return removed;
  }
}
