/**
 * One vitest test per rule, whose every failure names the rule: assertions through `must` carry
 * it, and anything else thrown (a rejected call, a setup step that could not go on) gets it put in
 * front of its message. A report then says which promise of the port an implementation broke.
 */
import { expect, it, type Assertion } from 'vitest';
import { titleOf, type Rule } from './rules.js';

/** `expect(actual, message)` with the message prefixed by the rule. */
export type Must = (actual: unknown, what: string) => Assertion<unknown>;

export function ruleTest(rule: Rule, body: (must: Must) => Promise<void>): void {
  it(titleOf(rule), async () => {
    try {
      await body((actual, what) => expect(actual, `${rule.rule}: ${what}`));
    } catch (err) {
      if (err instanceof Error && !err.message.startsWith(rule.rule)) err.message = `${rule.rule}: ${err.message}`;
      throw err;
    }
  });
}
