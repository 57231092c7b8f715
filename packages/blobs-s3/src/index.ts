export { S3BlobStore, type DownloadUrlOptions } from './s3-blob-store.js';
export { s3OptionsFromUrl, DEFAULT_PART_SIZE, MIN_PART_SIZE, type S3BlobStoreOptions } from './options.js';
export { assertBlobKey } from './keys.js';
export type { DirectUploadTarget } from './direct.js';
export { listMultipartUploads, type ListedUpload } from './list-uploads.js';
