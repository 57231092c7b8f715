/**
 * DI tokens. Symbols typed as `InjectionToken<T>`, so `container.resolve(TOKEN)` is typed.
 * `MECHANISM` and `FILE_VALIDATOR` take several registrations; a host collects them with
 * `container.resolveAll` (for mechanisms, `collectMechanisms`, which also checks their identifiers).
 */
import type { InjectionToken } from 'tsyringe';
import type { UploadMechanism } from './mechanism.js';
import type {
  Authenticator,
  Authorizer,
  BlobStore,
  Clock,
  FileValidator,
  MechanismHost,
  NameRegistrationPolicy,
  SessionStore,
} from './ports.js';

const token = <T>(name: string): InjectionToken<T> => Symbol.for(`@pep694/core:${name}`);

/** Every registered upload mechanism, in the operator's order of preference. */
export const MECHANISM = token<UploadMechanism>('mechanism');
export const SESSION_STORE = token<SessionStore>('session-store');
export const BLOB_STORE = token<BlobStore>('blob-store');
export const AUTHENTICATOR = token<Authenticator>('authenticator');
export const AUTHORIZER = token<Authorizer>('authorizer');
export const NAME_REGISTRATION_POLICY = token<NameRegistrationPolicy>('name-registration-policy');
/** File validators, run in registration order at completion. */
export const FILE_VALIDATOR = token<FileValidator>('file-validator');
export const MECHANISM_HOST = token<MechanismHost>('mechanism-host');
export const CLOCK = token<Clock>('clock');
