/**
 * @pep694/server: an express host for PEP 694 (Upload 2.0). `createServer` composes mechanisms,
 * storage, auth and validators and serves the whole session API.
 */
export { createServer, type CreateServerOptions, type MechanismRegistration, type Pep694Server } from './app.js';
export { ServerConfigSchema, type ServerConfig, type ServerConfigInput } from './config.js';
export { TokensFileAuth, TokensFileSchema, globToRegExp, tokenFromAuthorization, type TokensFile } from './auth/tokens-file.js';
export type { PublishCheck, CallContext, Reply, ServiceContext, ServiceDeps } from './service/context.js';
export type { ReapReport } from './service/reaper.js';
export { originOf, TrustedOrigins, boundAuthorities } from './http/trusted-origin.js';
export { Links } from './service/links.js';
export { SqliteSessionStore } from './storage/sqlite/store.js';
export { FsBlobStore } from './storage/fs-blob-store.js';
