// s3rver for the S3 rows of the bench, in its own process (so that its CPU is its own): one
// bucket, the environment a host needs to use it (PEP694_BLOBS, credentials) and s3rver's data
// directory, printed as "S3ENV <base64url JSON>" once it listens. SIGTERM stops it and removes
// its data.
import { startS3rver } from '@pep694/blobs-s3/testing';

const s3 = await startS3rver();
const { bucket, env } = await s3.blobsEnv('bench');
const info = { bucket, env, directory: s3.directory };
console.log(`S3ENV ${Buffer.from(JSON.stringify(info)).toString('base64url')}`);
process.on('SIGTERM', () => s3.close().then(() => process.exit(0)));
