/**
 * tus across nodes (issue #17): when the nodes share a PostgreSQL database (`PEP694_DATABASE_URL`)
 * and a bucket (`PEP694_BLOBS=s3://…`), the tus mechanism keeps its uploads in progress in that
 * bucket, under `<prefix>tus/` (`@tus/s3-store`), and takes each upload's tus lock in PostgreSQL
 * (`PostgresTusLocker`: advisory locks, handover by LISTEN/NOTIFY). So a PATCH that lands on
 * another node continues the same upload, and two nodes never append to one upload at once.
 * With either unset, tus keeps its uploads under `<PEP694_DATA>/tus` with a per-process lock.
 */
import { s3OptionsFromUrl } from '@pep694/blobs-s3';
import type { TusOptionsInput } from '@pep694/mechanism-tus';
import { PostgresTusLocker } from '@pep694/store-postgres';

/** The tus options for shared storage, or undefined when the nodes share no database and bucket. */
export function sharedTusFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<TusOptionsInput, 's3' | 'locker'> | undefined {
  const database = env.PEP694_DATABASE_URL;
  const blobs = env.PEP694_BLOBS;
  if (!database || !blobs?.startsWith('s3://')) return undefined;
  // blobs.ts and session-store.ts have checked both (and say what is wrong) before this runs.
  const s3 = s3OptionsFromUrl(blobs);
  return {
    s3: { bucket: s3.bucket, prefix: `${s3.prefix ?? ''}tus/`, client: s3.client ?? {} },
    locker: new PostgresTusLocker({ connectionString: database }),
  };
}
