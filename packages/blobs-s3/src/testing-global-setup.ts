/**
 * vitest globalSetup: for a run or project with `PEP694_TEST_BLOBS=s3`, one s3rver for the whole test run (in vitest's main process, on loopback),
 * its endpoint handed to the test processes in `PEP694_TEST_S3_ENDPOINT` (see `sharedTestS3`), and
 * stopped when the run ends. Each test server makes a bucket of its own on it. In a vitest config:
 * `globalSetup: ['@pep694/blobs-s3/testing/global-setup']` (or the path of this file).
 */
import { startS3rver, TEST_S3_ENDPOINT_ENV } from './testing.js';

export async function setup(project?: {
  config?: { env?: Record<string, string | undefined> };
}): Promise<(() => Promise<void>) | undefined> {
  // Only for a run (or a vitest project) whose test servers keep their bytes in S3.
  const wanted = process.env.PEP694_TEST_BLOBS === 's3' || project?.config?.env?.PEP694_TEST_BLOBS === 's3';
  // Another project of the same run started it already (or the caller brings its own).
  if (!wanted || process.env[TEST_S3_ENDPOINT_ENV]) return undefined;
  // The AWS SDK warns once per process that its 2027 releases need Node 22 (CI runs Node 20); the
  // test processes get the same setting from this environment.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const s3 = await startS3rver({ record: false });
  // Test processes start after global setup, with this environment.
  process.env[TEST_S3_ENDPOINT_ENV] = s3.endpoint;
  return async () => {
    delete process.env[TEST_S3_ENDPOINT_ENV];
    await s3.close();
  };
}
