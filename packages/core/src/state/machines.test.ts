import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProblemError } from '../problem.js';
import {
  EXPIRING_FILE_STATES,
  FILE_STATES_HOLDING_BYTES,
  FILE_UPLOAD_EVENTS,
  FILE_UPLOAD_STATES,
  IN_FLIGHT_FILE_STATES,
  LIVE_FILE_STATES,
  fileUploadMachine,
  type FileUploadEvent,
  type FileUploadStatus,
} from './file-upload-session.js';
import type { StateMachine } from './machine.js';
import {
  EDITABLE_SESSION_STATES,
  LIVE_SESSION_STATES,
  PUBLISHING_SESSION_EVENTS,
  PUBLISHING_SESSION_STATES,
  publishingSessionMachine,
  type PublishingSessionEvent,
  type PublishingSessionStatus,
} from './publishing-session.js';

/** Reads the transition tables straight out of the PEP text, so a missing row fails a test. */
function pepTables(): { from: string; event: string; to: string }[][] {
  const rst = readFileSync(new URL('../../../../../shared/spec/pep-0694.rst', import.meta.url), 'utf8');
  const tables: { from: string; event: string; to: string }[][] = [];
  const clean = (s: string) =>
    s
      .replace(/``/g, '')
      .replace(/\*/g, '')
      .replace(/:ref:`([^<`]*?)\s*<[^>]+>`/g, '$1')
      .trim();
  for (const block of rst.split('.. list-table::').slice(1)) {
    const body = block.split(/\n\S/)[0] ?? '';
    const cells = [...body.matchAll(/^\s+(\*|\s) - (.*)$/gm)].map((m) => clean(m[2] ?? ''));
    const rows: { from: string; event: string; to: string }[] = [];
    for (let i = 0; i + 2 < cells.length; i += 3) {
      rows.push({ from: cells[i]!, event: cells[i + 1]!, to: cells[i + 2]! });
    }
    tables.push(rows.slice(1)); // drop the header row
  }
  return tables;
}

const [publishingRows, fileRows] = pepTables();
const strip = (to: string) => to.replace(/\s*\(see .*\)$/, '');

describe('PEP 694 tables are read from the spec', () => {
  it('finds both transition tables with their rows', () => {
    expect(publishingRows).toHaveLength(12);
    expect(fileRows).toHaveLength(11);
  });
});

/** Every PEP row has an entry in our table with the same words, and behaves as the row says. */
function rowTests<S extends string, E extends string>(
  title: string,
  machine: StateMachine<S, E>,
  rows: { from: string; event: string; to: string }[],
) {
  describe(title, () => {
    for (const row of rows) {
      const name = `PEP 694 ${title} row: ${row.from} | ${row.event} -> ${strip(row.to)}`;
      it(name, () => {
        const entries = machine.table.filter((e) => e.pep.from === row.from && e.pep.event === row.event);
        expect(entries.length, 'our table has this row').toBeGreaterThan(0);
        for (const entry of entries) {
          if (entry.from === null) {
            expect(machine.initial).toBe(entry.to);
            expect(row.to).toBe(entry.to);
            continue;
          }
          for (const state of entry.from) {
            expect(row.from.split(' or ')).toContain(state);
            if (typeof entry.to === 'object') {
              expect(strip(row.to)).toBe('rejected with 409 Conflict');
              let thrown: unknown;
              try {
                machine.next(state, entry.event);
              } catch (err) {
                thrown = err;
              }
              expect(thrown).toBeInstanceOf(ProblemError);
              expect((thrown as ProblemError).status).toBe(409);
              expect((thrown as ProblemError).code).toBe(entry.to.reject);
            } else if (entry.to === 'unchanged') {
              expect(row.to).toMatch(/^unchanged/);
              expect(machine.next(state, entry.event)).toBe(state);
            } else {
              expect(row.to.split(' or ')).toContain(entry.to);
              expect(machine.next(state, entry.event)).toBe(entry.to);
            }
          }
        }
      });
    }
    it('has no entry that the PEP table lacks', () => {
      for (const entry of machine.table) {
        expect(rows.some((r) => r.from === entry.pep.from && r.event === entry.pep.event)).toBe(true);
      }
    });
  });
}

rowTests('Publishing Session States', publishingSessionMachine, publishingRows!);
rowTests('File Upload Session States', fileUploadMachine, fileRows!);

/** Every (state, event) pair that no row allows yields a coded 409, never a state. */
function illegalTests<S extends string, E extends string>(
  title: string,
  machine: StateMachine<S, E>,
  states: readonly S[],
  events: readonly E[],
  expectedCode: (state: S, event: E) => string,
) {
  describe(`${title}: illegal events`, () => {
    for (const state of states) {
      for (const event of events) {
        if (machine.rowFor(state, event)) continue;
        it(`${state} + ${event} is refused with ${expectedCode(state, event)}`, () => {
          expect(machine.allows(state, event)).toBe(false);
          expect(() => machine.next(state, event)).toThrowError(ProblemError);
          try {
            machine.next(state, event);
          } catch (err) {
            const p = err as ProblemError;
            expect(p.code).toBe(expectedCode(state, event));
            expect(p.status).toBe(409);
            expect(p.detail).toContain(state);
          }
        });
      }
    }
  });
}

illegalTests<PublishingSessionStatus, PublishingSessionEvent>(
  'Publishing Session States',
  publishingSessionMachine,
  PUBLISHING_SESSION_STATES,
  PUBLISHING_SESSION_EVENTS,
  (state) =>
    state === 'processing'
      ? 'session-processing'
      : state === 'published' || state === 'canceled'
        ? 'session-not-editable'
        : 'invalid-transition',
);

illegalTests<FileUploadStatus, FileUploadEvent>(
  'File Upload Session States',
  fileUploadMachine,
  FILE_UPLOAD_STATES,
  FILE_UPLOAD_EVENTS,
  (state, event) =>
    state === 'processing'
      ? 'file-processing'
      : event === 'transfer' || event.startsWith('complete')
        ? 'file-not-pending'
        : 'invalid-transition',
);

describe('PEP 694 state rules beyond the tables', () => {
  it('Publishing Session States: error permits exactly the operations of open', () => {
    for (const event of PUBLISHING_SESSION_EVENTS) {
      if (event === 'create') continue;
      // "fully editable again": the same set of client-driven operations is allowed.
      const clientEvents: PublishingSessionEvent[] = ['file-changed', 'publish-immediate', 'publish-deferred', 'publish-failed', 'cancel'];
      if (clientEvents.includes(event)) {
        expect(publishingSessionMachine.allows('error', event)).toBe(publishingSessionMachine.allows('open', event));
      }
    }
  });
  it('File Upload Session States: only canceled is terminal', () => {
    for (const state of FILE_UPLOAD_STATES) {
      const anyExit = FILE_UPLOAD_EVENTS.some((e) => fileUploadMachine.allows(state, e));
      expect(anyExit).toBe(state !== 'canceled');
    }
  });
  it('Publishing Session States: published and canceled are terminal', () => {
    for (const state of PUBLISHING_SESSION_STATES) {
      const anyExit = PUBLISHING_SESSION_EVENTS.some((e) => publishingSessionMachine.allows(state, e));
      expect(anyExit).toBe(state !== 'published' && state !== 'canceled');
    }
  });
});

describe('state sets and machine queries (one source for the service and the stores)', () => {
  it('EDITABLE_SESSION_STATES are the states a file may change in', () => {
    expect(publishingSessionMachine.sourcesOf('file-changed')).toEqual(EDITABLE_SESSION_STATES);
    expect(publishingSessionMachine.sourcesOf('cancel')).toEqual(EDITABLE_SESSION_STATES);
  });
  it('LIVE_SESSION_STATES are the non-terminal ones', () => {
    expect(LIVE_SESSION_STATES).toEqual(['open', 'processing', 'error']);
  });
  it('targetOf names the one target of an event, and refuses events whose target depends on the source', () => {
    expect(publishingSessionMachine.targetOf('cancel')).toBe('canceled');
    expect(publishingSessionMachine.targetOf('publish-deferred')).toBe('processing');
    expect(fileUploadMachine.targetOf('complete-immediate')).toBe('completed');
    expect(() => publishingSessionMachine.targetOf('file-changed')).toThrow(/no single target/);
  });
  it('LIVE_FILE_STATES are the states some row leaves (all but the terminal one)', () => {
    const nonTerminal = FILE_UPLOAD_STATES.filter((s) => FILE_UPLOAD_EVENTS.some((e) => fileUploadMachine.allows(s, e)));
    expect(LIVE_FILE_STATES).toEqual(nonTerminal);
  });
  it('FILE_STATES_HOLDING_BYTES are the states from which the file can still become completed', () => {
    const leadsToCompleted = (state: FileUploadStatus, seen = new Set<FileUploadStatus>()): boolean => {
      if (state === 'completed') return true;
      seen.add(state);
      return FILE_UPLOAD_EVENTS.some((e) => {
        if (!fileUploadMachine.allows(state, e)) return false;
        const next = fileUploadMachine.next(state, e);
        return !seen.has(next) && leadsToCompleted(next, seen);
      });
    };
    expect(FILE_STATES_HOLDING_BYTES).toEqual(FILE_UPLOAD_STATES.filter((s) => leadsToCompleted(s)));
  });
  it('sourcesOf leaves out rejecting rows', () => {
    expect(publishingSessionMachine.sourcesOf('cancel')).not.toContain('processing');
  });
  it('the file state sets agree with the table', () => {
    // Not canceled: every state but the one a cancel leads to.
    expect(LIVE_FILE_STATES).toEqual(FILE_UPLOAD_STATES.filter((s) => s !== fileUploadMachine.targetOf('cancel')));
    // Not resolved: a completion (immediate or deferred) is still to come.
    const unresolved = new Set([
      ...fileUploadMachine.sourcesOf('complete-immediate'),
      ...fileUploadMachine.sourcesOf('processing-succeeded'),
    ]);
    expect(IN_FLIGHT_FILE_STATES).toEqual(FILE_UPLOAD_STATES.filter((s) => unresolved.has(s)));
    // Expiring: the mechanism may still be executing.
    expect(EXPIRING_FILE_STATES).toEqual(fileUploadMachine.sourcesOf('transfer'));
  });
});
