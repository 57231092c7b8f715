/**
 * `pep694 session status|publish|cancel|extend SESSION` and `session list`: SESSION is a local id
 * from the state (`a1b2c3d4`) or a session URL (PEP 694 "Suggested Command-Line Interfaces").
 */
import { SessionApi, type PublishingSession } from './api.js';
import { UsageError } from './errors.js';
import type { SessionRecord, StateStore } from './state.js';
import { publish } from './upload.js';

/** The session URL (and local record, when there is one) that SESSION names. */
export function resolveSession(spec: string, state: StateStore | undefined): { url: string; record: SessionRecord | undefined } {
  if (/^https?:\/\//i.test(spec)) return { url: spec, record: state?.bySessionUrl(spec) };
  if (/^[0-9a-f]{8}$/.test(spec)) {
    const record = state?.get(spec);
    if (record) return { url: record.sessionUrl, record };
  }
  throw new UsageError(`no local session ${spec} (give a local id from \`pep694 session list\`, or the session URL)`);
}

function remember(state: StateStore | undefined, record: SessionRecord | undefined, session: { status: string } | undefined) {
  if (state && record && session) {
    record.status = session.status;
    state.save(record);
  }
}

export async function sessionStatus(
  api: SessionApi,
  spec: string,
  state?: StateStore,
): Promise<{ session: PublishingSession; record: SessionRecord | undefined }> {
  const { url, record } = resolveSession(spec, state);
  const session = await api.status(url);
  remember(state, record, session);
  return { session, record };
}

export async function publishSession(
  api: SessionApi,
  spec: string,
  state?: StateStore,
): Promise<{ session: PublishingSession; record: SessionRecord | undefined }> {
  const { url, record } = resolveSession(spec, state);
  const current = await api.status(url);
  const { session } = await publish(api, current);
  const final = session ?? (await api.status(url));
  remember(state, record, final);
  return { session: final, record };
}

export async function cancelSession(
  api: SessionApi,
  spec: string,
  state?: StateStore,
): Promise<{ session: PublishingSession | undefined; record: SessionRecord | undefined }> {
  const { url, record } = resolveSession(spec, state);
  await api.cancel(url);
  const session = await api.status(url).catch(() => undefined);
  remember(state, record, session ?? { status: 'canceled' });
  return { session, record };
}

export async function extendSession(
  api: SessionApi,
  spec: string,
  seconds: number,
  state?: StateStore,
): Promise<{ session: PublishingSession; record: SessionRecord | undefined }> {
  const { url, record } = resolveSession(spec, state);
  const session = await api.extend(await api.status(url), seconds);
  remember(state, record, session);
  return { session, record };
}
