/**
 * The guard's rules: CEL conditions (the evaluator runbooks use, src/compile/expr.ts) over what the last poll saw,
 * `cluster` and `members` (see src/guard/facts.ts). When one holds, the guard runs its prevention runbook.
 *
 * The defaults would have prevented the seed incident (an 8.4 GB db with 156 MB live, auto-compaction "0"):
 * - quota-use: a member's db above 80% of the quota that member runs with (its own /metrics, not a guess);
 * - fragmentation: more than half of a member's db is free pages, with at least 100 MiB to gain;
 * - history: auto-compaction is not known to be on and more than 1,000,000 revisions were written since the last
 *   compaction.
 */
import { exprDialect } from '../compile/expr.ts';
import { StepError, UserError, messageOf } from '../util/errors.ts';
import type { GuardFacts } from './facts.ts';

export const RULE_VARIABLES = ['cluster', 'members'] as const;
const dialect = exprDialect(RULE_VARIABLES);

export interface Rule {
  name: string;
  /** CEL over `cluster` and `members`; must yield true or false. */
  expr: string;
}

export const DEFAULT_RULES: readonly Rule[] = [
  { name: 'quota-use', expr: 'members.exists(m, m.reachable && m.usage > 0.8)' },
  { name: 'fragmentation', expr: 'members.exists(m, m.reachable && m.fragmentation > 0.5 && m.reclaimable >= 100 * 1024 * 1024)' },
  { name: 'history', expr: 'cluster.autoCompaction != true && cluster.history > 1000000' },
];

const RULE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * The defaults with overrides applied: an expression replaces (or adds) a rule, `off` removes one. `where` names
 * where an override came from in errors (a flag, a config key).
 */
export function buildRules(overrides: Record<string, string | false>, where: (name: string) => string): Rule[] {
  const rules = new Map(DEFAULT_RULES.map((r) => [r.name, r.expr]));
  for (const [name, expr] of Object.entries(overrides)) {
    if (!RULE_NAME.test(name)) throw new UserError(`${where(name)}: ${JSON.stringify(name)} is not a rule name (lowercase letters, digits and -)`);
    if (expr === false || expr === 'off') {
      rules.delete(name);
      continue;
    }
    const checked = dialect.check(expr);
    if (!checked.ok) throw new UserError(`${where(name)}: ${checked.error}${checked.offset !== undefined ? ` (at character ${checked.offset + 1})` : ''} in ${JSON.stringify(expr)}`);
    rules.set(name, expr);
  }
  return [...rules].map(([name, expr]) => ({ name, expr }));
}

export interface RuleResult {
  rule: string;
  holds: boolean;
  /** The rule could not be evaluated on these facts (it counts as not holding). */
  error?: string;
}

/** Evaluate every rule; a rule that fails to evaluate does not hold and says why. */
export function evaluateRules(rules: readonly Rule[], facts: GuardFacts): RuleResult[] {
  return rules.map((r) => {
    try {
      return { rule: r.name, holds: dialect.evalBool(r.expr, { cluster: facts.cluster, members: facts.members }) };
    } catch (err) {
      return { rule: r.name, holds: false, error: err instanceof StepError ? err.message : messageOf(err) };
    }
  });
}
