/**
 * Every front door of the reference index and its hostile requests. A new door (a legacy upload
 * API at /legacy/, another mechanism) is a module exporting a `FrontDoor` (see door.ts), added here.
 */
import type { FrontDoor } from './door.js';
import { httpFraming } from './framing.js';
import { httpPostBytes } from './http-post-bytes.js';
import { multipart } from './multipart.js';
import { operations } from './operations.js';
import { sessionApi } from './session-api.js';
import { tus } from './tus.js';

export const FRONT_DOORS: readonly FrontDoor[] = [sessionApi, httpPostBytes, multipart, tus, httpFraming, operations];
