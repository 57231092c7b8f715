/**
 * A state machine as one transition table. Each row is a row of a PEP 694 table, quoted in `pep`,
 * so a reader can hold the code against the PEP line by line.
 */
import { ProblemError, type ProblemCode } from '../problem.js';

/** What a row does: move to a state, keep the state, or reject the event with a coded error. */
export type RowOutcome<S extends string> = S | 'unchanged' | { readonly reject: ProblemCode };

export interface TransitionRow<S extends string, E extends string> {
  /** The PEP's own words for this row. */
  readonly pep: { readonly from: string; readonly event: string; readonly to: string };
  /** States the row applies to; `null` is the PEP's "(none)", before the resource exists. */
  readonly from: readonly S[] | null;
  readonly event: E;
  readonly to: RowOutcome<S>;
}

export interface StateMachine<S extends string, E extends string> {
  readonly name: string;
  readonly states: readonly S[];
  readonly events: readonly E[];
  readonly table: readonly TransitionRow<S, E>[];
  /** The state a new resource starts in (the target of the "(none)" row). */
  readonly initial: S;
  /**
   * The state after `event` in `state`. Throws a ProblemError for a rejected event (the PEP's
   * "rejected with 409" rows) and for an event that no row allows.
   */
  next(state: S, event: E): S;
  /** Whether `event` is allowed in `state` without throwing. */
  allows(state: S, event: E): boolean;
  /** The row that governs `event` in `state`, if any. */
  rowFor(state: S | null, event: E): TransitionRow<S, E> | undefined;
  /**
   * The states from which `event` may happen (rows that move or keep the state, not rejecting
   * ones), in the order of `states`. Stores take their compare-and-set conditions from here, so
   * the SQL and the service never spell a state list of their own.
   */
  sourcesOf(event: E): readonly S[];
  /**
   * The one state `event` leads to from every state in `sourcesOf(event)`. Throws when the
   * target depends on the source (an `unchanged` row) or differs between rows, so a caller that
   * writes the target into a store cannot pick the wrong one.
   */
  targetOf(event: E): S;
}

export interface MachineSpec<S extends string, E extends string> {
  readonly name: string;
  readonly states: readonly S[];
  readonly events: readonly E[];
  readonly table: readonly TransitionRow<S, E>[];
  /** The coded error for an event that no row allows in `state`. */
  readonly illegal: (state: S, event: E) => ProblemError;
  /** Human words for an event, used in rejection details. */
  readonly describe: (event: E) => string;
}

export function defineMachine<S extends string, E extends string>(spec: MachineSpec<S, E>): StateMachine<S, E> {
  const initialRow = spec.table.find((r) => r.from === null);
  if (!initialRow || typeof initialRow.to !== 'string' || initialRow.to === 'unchanged') {
    throw new Error(`${spec.name}: the table needs one "(none)" row that names a state`);
  }
  const initial = initialRow.to;

  const rowFor = (state: S | null, event: E) =>
    spec.table.find((r) => r.event === event && (state === null ? r.from === null : r.from?.includes(state)));

  const next = (state: S, event: E): S => {
    const row = rowFor(state, event);
    if (!row) throw spec.illegal(state, event);
    if (row.to === 'unchanged') return state;
    if (typeof row.to === 'object') {
      throw new ProblemError(row.to.reject, `Cannot ${spec.describe(event)} while the ${spec.name} is ${state}.`, {
        extensions: { state },
      });
    }
    return row.to;
  };

  const allows = (state: S, event: E) => {
    const row = rowFor(state, event);
    return row !== undefined && typeof row.to !== 'object';
  };

  const sourcesOf = (event: E): readonly S[] => spec.states.filter((state) => allows(state, event));

  const targetOf = (event: E): S => {
    const targets = new Set(sourcesOf(event).map((state) => rowFor(state, event)?.to));
    const [only] = targets;
    if (targets.size !== 1 || typeof only !== 'string' || only === 'unchanged') {
      throw new Error(`${spec.name}: "${event}" has no single target state`);
    }
    return only;
  };

  return {
    name: spec.name,
    states: spec.states,
    events: spec.events,
    table: spec.table,
    initial,
    next,
    allows,
    rowFor,
    sourcesOf,
    targetOf,
  };
}
