/**
 * The plugin's options: one zod schema, with every default; the types are what it parses to, so
 * there is no hand-written interface to keep in step with it.
 */
import { z } from 'zod';
import { OPERATOR_SEGMENT } from '@pep694/core';
import type { Resolver } from './fetcher.js';
import { parseAddressRule, parseHostRule } from './policy.js';

/** A zod check that runs one of the policy parsers, so a bad entry fails at registration. */
const parsedBy = (parse: (entry: string) => unknown) =>
  z.string().superRefine((entry, ctx) => {
    try {
      parse(entry);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** Every option, with its default. Unknown keys are refused, so a typo fails at startup. */
export const HttpFetchOptionsSchema = z.strictObject({
  /** Names the index that serves the mechanism: `vnd-<operator>-http-fetch`. */
  operator: z.string().regex(OPERATOR_SEGMENT, 'the operator segment is [a-z0-9]+'),
  /**
   * Hosts the index may fetch from: `files.example.org`, `*.example.org`, optionally `:port` or
   * `:*`. Empty (the default) refuses every URL.
   */
  allowHosts: z.array(parsedBy(parseHostRule)).default([]),
  /**
   * Addresses outside public unicast that are allowed anyway, as CIDRs or single addresses
   * (`10.20.0.0/16`, `127.0.0.1`). Empty (the default): loopback, private, link-local and every
   * other special-purpose range are refused.
   */
  allowAddresses: z.array(parsedBy(parseAddressRule)).default([]),
  /** URL schemes the index fetches; `http` must be listed explicitly. */
  schemes: z
    .array(z.enum(['http', 'https']))
    .min(1)
    .default(['https']),
  /** Redirects followed per fetch, each checked like the first URL. */
  maxRedirects: z.number().int().min(0).max(20).default(5),
  /** Name resolution + TCP connect + TLS handshake, per hop, in ms. */
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /** Longest silence from the remote server once connected, in ms. */
  idleTimeoutMs: z.number().int().positive().default(30_000),
  /** Longest whole fetch, redirects included, in ms. */
  totalTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(30 * 60_000),
  /** Decline larger files at negotiation (422 `mechanism-declined`). The host's own limit applies regardless. */
  maxFileSize: z.number().int().nonnegative().optional(),
  /** Fetches running at once across all files; more are refused with 503 and `Retry-After`. */
  maxConcurrentFetches: z.number().int().positive().default(8),
  /** The `User-Agent` of the index's requests. */
  userAgent: z.string().min(1).default('pep694-http-fetch/0.1 (+https://peps.python.org/pep-0694/)'),
  /**
   * Replaces DNS resolution (`dns.lookup` with `all: true`): for tests, or a resolver of your own.
   * Every address it returns is checked; the connection goes to the first one.
   */
  resolver: z.custom<Resolver>((v) => typeof v === 'function', 'a function (hostname) => Promise<{ address, family }[]>').optional(),
});
/** What an operator passes (`operator` required). */
export type HttpFetchOptionsInput = z.input<typeof HttpFetchOptionsSchema>;
/** The parsed options. */
export type HttpFetchPluginOptions = z.output<typeof HttpFetchOptionsSchema>;
/** What the mechanism takes: the parsed options but the operator (which is in its identifier). */
export type HttpFetchOptions = Omit<HttpFetchPluginOptions, 'operator'>;
