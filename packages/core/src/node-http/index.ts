/**
 * `@pep694/core/node-http`: node:http helpers shared by the first-party mechanisms, on both sides
 * of the wire. The server side serves the mechanism routes, which the host hands node's own
 * request and response: header checks and the idle watch (request.ts), answering by the rules on
 * `UploadMechanism` (refusal.ts: `inviteBody`, `refuse`), and a whole one-request upload route
 * (one-request-route.ts, transfers.ts). The client side (client.ts) serves the client halves,
 * which send the file with node's http/https.
 *
 * Why here: every mechanism plugin already peer-depends on core, and a plugin must not depend on
 * another plugin for helpers (it would install and load that plugin's express routes and options
 * with it). A separate `@pep694/node-http` package would be one more thing to publish and keep in
 * step for a few hundred lines.
 *
 * Why a subpath, not the main entry: the main entry is the protocol model and names no HTTP
 * implementation in its types; these are node:http plumbing. The subpath also keeps the client
 * halves (the `./client` subpath of each plugin) standalone: they load this module and core's problem
 * types only — no express, no tsyringe, no zod, nothing of a server.
 */
export * from './request.js';
export * from './refusal.js';
export * from './one-request-route.js';
export * from './client.js';
export * from './mechanism-client.js';
export * from './transfers.js';
