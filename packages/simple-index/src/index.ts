/**
 * @pep694/simple-index: the read side of a PEP 694 index. Express routers that serve the Simple
 * Repository API (PEP 503 HTML, PEP 691 JSON, PEP 700, PEP 658/714 metadata, ranged downloads)
 * for the published namespace and for each publishing session's stage preview, reading the same
 * `SessionStore` and `BlobStore` ports the upload side writes.
 */
export { publishedIndexRouter, publishedIntegrityRouter, stagePreviewRouter, type SimpleIndexOptions } from './router.js';
export { negotiateSimpleType, SIMPLE_TYPES, SIMPLE_V1_HTML, SIMPLE_V1_JSON, TEXT_HTML, type SimpleType } from './negotiate.js';
export { publishedView, stageView, versionsOf, type IndexFile, type IndexStore, type ProjectEntry, type RepositoryView } from './view.js';
export {
  escapeHtml,
  provenanceHref,
  projectDetailHtml,
  projectDetailJson,
  projectListHtml,
  projectListJson,
  REPOSITORY_VERSION,
} from './render.js';
export { contentTypeFor, parseRange } from './download.js';
export { DEFAULT_PAGE_CACHE_BYTES, PageCache, type PageCacheOptions } from './page-cache.js';
