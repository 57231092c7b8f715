/**
 * The plugin manifest: what a mechanism package exports, and how a host registers it.
 *
 * ```ts
 * export default definePlugin({
 *   name: '@acme/mechanism-stream',
 *   coreRange: '^0.1.0',
 *   options: z.object({ operator: z.string() }),
 *   register(container, options) {
 *     container.register(MECHANISM, { useFactory: instanceCachingFactory(...) });
 *   },
 * });
 * ```
 */
import semver from 'semver';
import type { DependencyContainer } from 'tsyringe';
import type { z } from 'zod';
import { checkMechanismIdentifier, MechanismRegistrationError, type UploadMechanism } from './mechanism.js';
import { issuesToFieldErrors } from './schemas.js';
import { MECHANISM } from './tokens.js';
import { CORE_VERSION } from './version.js';

export interface MechanismPlugin<O = unknown> {
  /** The npm package name, used in error messages. */
  readonly name: string;
  /** The semver range of `@pep694/core` the plugin works with, checked at registration. */
  readonly coreRange: string;
  /** Validates and defaults the options the operator passes. */
  readonly options: z.ZodType<O>;
  /**
   * Registers the plugin's mechanism(s) under `MECHANISM` (and anything else it needs). Register
   * one instance per container (a value, `instanceCachingFactory`, or `Lifecycle.ContainerScoped`),
   * since the host resolves the list more than once. No async work and no I/O here.
   */
  register(container: DependencyContainer, options: O): void;
}

/** Identity helper that infers the options type from the schema. */
export function definePlugin<O>(plugin: MechanismPlugin<O>): MechanismPlugin<O> {
  return plugin;
}

/**
 * Registers `plugin` with `rawOptions` into `container`, then checks every registered mechanism's
 * identifier (naming rules, no duplicates). Register the host's ports first: the check resolves
 * the mechanisms. Throws MechanismRegistrationError with the reason.
 */
export function registerPlugin<O>(container: DependencyContainer, plugin: MechanismPlugin<O>, rawOptions?: unknown): void {
  if (!semver.validRange(plugin.coreRange)) {
    throw new MechanismRegistrationError(`${plugin.name}: coreRange "${plugin.coreRange}" is not a semver range`);
  }
  if (!semver.satisfies(CORE_VERSION, plugin.coreRange, { includePrerelease: true })) {
    throw new MechanismRegistrationError(`${plugin.name} supports @pep694/core ${plugin.coreRange}, but this host runs ${CORE_VERSION}`);
  }
  const parsed = plugin.options.safeParse(rawOptions ?? {});
  if (!parsed.success) {
    const why = issuesToFieldErrors(parsed.error.issues)
      .map((e) => `${e.source === '/' ? 'options' : `options${e.source.replace(/\//g, '.')}`}: ${e.message}`)
      .join('; ');
    throw new MechanismRegistrationError(`${plugin.name}: invalid options: ${why}`);
  }
  plugin.register(container, parsed.data);
  try {
    collectMechanisms(container);
  } catch (err) {
    throw new MechanismRegistrationError(`${plugin.name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The registered mechanisms in registration order (the operator's preference), after checking
 * their identifiers. Throws MechanismRegistrationError for a malformed or duplicate identifier.
 */
export function collectMechanisms(container: DependencyContainer): UploadMechanism[] {
  const mechanisms = container.isRegistered(MECHANISM, true) ? container.resolveAll(MECHANISM) : [];
  const seen = new Set<string>();
  for (const m of mechanisms) {
    const check = checkMechanismIdentifier(m.identifier);
    if (!check.ok) throw new MechanismRegistrationError(`mechanism identifier refused: ${check.reason}`);
    if (seen.has(m.identifier)) {
      throw new MechanismRegistrationError(`mechanism "${m.identifier}" is registered twice; identifiers must be unique`);
    }
    seen.add(m.identifier);
  }
  return mechanisms;
}
