/**
 * Every option of the host in one documented type, with safe defaults. `createServer` parses
 * what the operator passes with `ServerConfigSchema`, so a typo or a bad value fails at startup.
 */
import { z } from 'zod';

const ms = z.number().int().nonnegative();
const seconds = z.number().int().positive();
/** A mount path below the root: starts and ends with "/", at least one segment. */
/** An entry of `allowedHosts`: what a `Host` header may carry (RFC 9110 §7.2), in lower or upper case. */
export const HOST_RULE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const mountPath = z.string().regex(/^\/(?:[A-Za-z0-9._~-]+\/)+$/, 'must start and end with "/" and have at least one segment');

export const ServerConfigSchema = z
  .object({
    /** Directory for the SQLite file, blobs and the dev token. */
    dataDir: z.string().min(1),
    /**
     * Public origin used in links, e.g. `https://upload.example.org`. When unset, links are built
     * on `http://` and the request's Host, once it passed `allowedHosts` (fine on loopback; set
     * `publicUrl` behind a proxy: X-Forwarded-* headers are never read).
     */
    publicUrl: z.string().url().optional(),
    /**
     * The `Host` values (`name` or `name:port`; `name` alone: any port) this index answers for; a
     * request for another authority gets 421 `misdirected-request`. Without `publicUrl`, links are
     * built on the request's Host, so only these hosts ever appear in them. Default: without
     * `publicUrl`, the address `listen()` binds (with `localhost` for a loopback address, every
     * interface's address for 0.0.0.0 or ::); with `publicUrl`, any Host (a proxy may send its
     * own), since links then never come from the request.
     */
    allowedHosts: z
      .array(z.string().regex(HOST_RULE, 'must be a host name, IPv4 address or [IPv6] literal, with an optional :port'))
      .optional(),
    /** Path of the Upload 2.0 root endpoint. */
    rootPath: z
      .string()
      .regex(/^\/(?:[A-Za-z0-9._~-]+\/)*$/, 'must start and end with "/"')
      .default('/upload/'),
    /** Index identifier for `meta._<index>` keys in responses (PEP 694 "Optional Index-specific Metadata"). */
    indexId: z
      .string()
      .regex(/^[a-z0-9.-]+$/)
      .default('pep694'),
    /** Base of problem `type` URIs (the code is appended after `#`); a URN when unset. */
    problemTypeBase: z.string().url().optional(),
    /**
     * Serve stage previews and the published simple index (PEP 694 "Staged Previews", PEP 503/691).
     * When set (`index: {}` for the defaults), session responses carry `session-token` and
     * `links.stage`, and `files[].link` uses the token. When unset, neither index is served and
     * both keys are omitted, as the PEP requires of indexes without previews.
     */
    index: z
      .object({
        /** Mount of the published index (the `--index-url` for pip). */
        simplePath: mountPath.default('/simple/'),
        /** Mount of the stage previews: `{stagePath}{session-token}/` is one session's index. */
        stagePath: mountPath.default('/stage/'),
        /**
         * Mount of PEP 740 provenance at PyPI's Integrity API URLs,
         * `{integrityPath}{project}/{version}/{filename}/provenance` (the pages link to the same
         * object under `{simplePath}integrity/`, and a stage's under its own).
         */
        integrityPath: mountPath.default('/integrity/'),
        /**
         * Bytes of rendered index pages (published and stage, HTML and JSON) kept in memory, least
         * recently used evicted; 0 renders every request.
         */
        pageCacheBytes: z
          .number()
          .int()
          .nonnegative()
          .default(32 * 1024 * 1024),
        /**
         * Seconds: when set and the blob store offers `downloadUrl` (`@pep694/blobs-s3`), file
         * downloads answer 302 to a presigned URL valid this long instead of streaming through the
         * index. Unset: the index streams every download.
         */
        downloadRedirectTtl: z.number().int().min(1).max(604_800).optional(),
      })
      .optional(),

    /**
     * Serve the legacy upload API (PEP 694 "Legacy API": `POST` multipart/form-data, what twine
     * and every packaging tool send) at `legacy.path`, in the same namespace and under the same
     * rules as Upload 2.0 (`@pep694/legacy-upload`). Unset: not served.
     */
    legacy: z
      .object({
        /** Mount of the legacy upload endpoint (`--repository-url` for twine). */
        path: mountPath.default('/legacy/'),
        /** A page named in its 403 messages ("See … for more information."). */
        helpUrl: z.string().url().optional(),
        /** Most bytes of all form fields of one upload together (the description is the largest). */
        maxFieldBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024),
      })
      .optional(),

    /** Lifetime of a new publishing session. The PEP recommends not expunging before a week. */
    sessionTtl: seconds.default(7 * 24 * 3600),
    /** Longest total lifetime an extension may reach, counted from creation. */
    sessionMaxLifetime: seconds.default(30 * 24 * 3600),
    /** Lifetime of a file upload session (capped by its publishing session's). */
    fileTtl: seconds.default(24 * 3600),
    /** How long a published or canceled session keeps answering its status URL (PEP "Session Status Retention"). */
    retention: seconds.default(7 * 24 * 3600),
    /** How often the reaper runs (expiry, retention, orphaned blobs). 0 disables the timer. */
    reaperInterval: ms.default(60_000),
    /** How often the reaper also walks the blob store for orphaned bytes and crashed stagings (ms). */
    blobSweepInterval: ms.default(3_600_000),
    /**
     * How long a work lease (a deferred verification or publish, a reaper pass) lasts without
     * renewal on a store several nodes share (PostgreSQL): how long the work of a node that died
     * waits before a live node's next reaper pass takes it over (ms).
     */
    leaseTtl: z.number().int().min(1_000).default(30_000),
    /** `Retry-After` (seconds) while a file upload is pending or processing. */
    retryAfter: seconds.default(1),

    /**
     * `GET /metrics` in Prometheus text format: requests by route and status, uploads, bytes,
     * completions and publishes, sessions by status, store and blob latency (packages/server/README.md).
     */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        /** When set, `/metrics` answers only requests with `Authorization: Bearer <token>` (401 otherwise). */
        token: z.string().min(16, 'must be at least 16 characters').optional(),
        /** Also report the process's metrics (`process_*`, `nodejs_*`: CPU, memory, event loop, GC). */
        processMetrics: z.boolean().default(true),
      })
      .prefault({}),
    /** `GET /healthz` (alive) and `GET /readyz` (the session store and the blob store answer their ping). */
    health: z
      .object({
        enabled: z.boolean().default(true),
        /** Longest wait for each store's ping in `/readyz` before it counts as failed (ms). */
        readyTimeout: z.number().int().positive().default(2_000),
      })
      .prefault({}),

    limits: z
      .object({
        /** Largest file a client may declare, in bytes. */
        maxFileSize: z
          .number()
          .int()
          .positive()
          .default(2 * 1024 ** 3),
        /** Largest JSON request body, in bytes. */
        maxJsonBody: z
          .number()
          .int()
          .positive()
          .default(64 * 1024),
        /** Most files (not canceled) in one publishing session. */
        maxFilesPerSession: z.number().int().positive().default(1000),
        // Canceled ones included: each keeps its row (and status URL) until the session is forgotten.
        maxFileSessionsPerSession: z.number().int().positive().default(10_000),
        /** Most live (open, processing, error) sessions one principal may have created. */
        maxLiveSessionsPerPrincipal: z.number().int().positive().default(100),
        /**
         * Most bytes one principal may hold in file upload sessions not yet published (declared
         * sizes of its pending, processing and completed files in open, processing or error
         * sessions). Released when files are deleted, replaced, canceled, expire or are published.
         * Default 10 GiB, PyPI's default total size of a project.
         */
        maxStagedBytesPerPrincipal: z
          .number()
          .int()
          .positive()
          .default(10 * 1024 ** 3),
        /**
         * Most new project names one principal may register per `newProjectsWindow`: names it
         * registered in the window plus names its live first-release sessions reserve. Default 20
         * per hour, as PyPI's `PROJECT_CREATE_USER_RATELIMIT_STRING`.
         */
        maxNewProjectsPerWindow: z.number().int().positive().default(20),
        /** The window of `maxNewProjectsPerWindow`, in seconds. */
        newProjectsWindow: z.number().int().positive().default(3600),
        /** A JSON body must arrive within this time. */
        jsonBodyTimeout: ms.default(30_000),
        /** Node's headersTimeout. */
        headersTimeout: ms.default(60_000),
        /** Node's requestTimeout: the longest any request (uploads included) may take. 0 = none. */
        requestTimeout: ms.default(3_600_000),
        /**
         * Most hash algorithms one file upload session may declare: every declared digest is
         * computed over every byte (the PEP: "all hashes provided MUST be valid for the file"), so
         * each costs about as much CPU as the upload itself. More get 400 `invalid-hashes`.
         */
        maxHashes: z.number().int().min(1).max(14).default(3),
        /** Verify files larger than this in the background (202 + processing) when their bytes must be re-read. */
        deferVerificationAbove: z
          .number()
          .int()
          .nonnegative()
          .default(256 * 1024 ** 2),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    if (!config.index && !config.legacy) return;
    const mounts: (readonly [string, string])[] = [['rootPath', config.rootPath]];
    if (config.index)
      mounts.push(
        ['index.simplePath', config.index.simplePath],
        ['index.stagePath', config.index.stagePath],
        ['index.integrityPath', config.index.integrityPath],
      );
    if (config.legacy) mounts.push(['legacy.path', config.legacy.path]);
    for (const [a, pa] of mounts) {
      for (const [b, pb] of mounts) {
        if (a !== b && pb.startsWith(pa))
          ctx.addIssue({ code: 'custom', path: b.split('.'), message: `${b} (${pb}) must not be inside ${a} (${pa})` });
      }
    }
  });

export type ServerConfigInput = z.input<typeof ServerConfigSchema>;
export type ServerConfig = z.output<typeof ServerConfigSchema>;
