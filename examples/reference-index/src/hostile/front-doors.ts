/**
 * Every front door of the reference index and its hostile requests. A new door (another mechanism,
 * another API) is a module exporting a `FrontDoor` (see door.ts), added here.
 */
import { attestations } from './attestations.js';
import type { FrontDoor } from './door.js';
import { httpFraming } from './framing.js';
import { httpPostBytes } from './http-post-bytes.js';
import { legacy } from './legacy.js';
import { multipart } from './multipart.js';
import { operations } from './operations.js';
import { resumableI6, resumableI8 } from './resumable.js';
import { sessionApi } from './session-api.js';
import { tus } from './tus.js';

export const FRONT_DOORS: readonly FrontDoor[] = [
  sessionApi,
  httpPostBytes,
  multipart,
  tus,
  resumableI6,
  resumableI8,
  legacy,
  httpFraming,
  attestations,
  operations,
];
