/**
 * When a holding rule starts a run: hysteresis and a cooldown, so a guard never defragments again and again.
 *
 * - Hysteresis: a rule that started a run which succeeded is disarmed until it is seen NOT holding once. A rule that
 *   still holds right after a successful prevention run (live data near the quota: compaction and defrag cannot
 *   help) does not start another one; the guard reports it instead.
 * - Cooldown: no run starts within `cooldownMs` of the end of the previous one (failed runs included: a refused
 *   preflight is not retried every poll).
 * Pure: the guard feeds it rule results and the clock.
 */
import type { RuleResult } from './rules.ts';

export interface TriggerState {
  /** Rules waiting to be seen clear before they may start a run again. */
  disarmed: Set<string>;
  /** When the last run ended (ms since epoch). */
  lastRunEndedAt?: number;
}

export type Decision =
  | { action: 'none' }
  | { action: 'start'; rules: string[] }
  | { action: 'cooldown'; rules: string[]; untilMs: number }
  /** Every holding rule is disarmed: it held through a successful run. */
  | { action: 'hysteresis'; rules: string[] };

export function newTriggerState(): TriggerState {
  return { disarmed: new Set() };
}

/** What to do about this poll's rule results (re-arms the rules that do not hold). */
export function decide(results: readonly RuleResult[], state: TriggerState, now: number, cooldownMs: number): Decision {
  for (const r of results) if (!r.holds && !r.error) state.disarmed.delete(r.rule);
  const holding = results.filter((r) => r.holds).map((r) => r.rule);
  if (holding.length === 0) return { action: 'none' };
  const armed = holding.filter((r) => !state.disarmed.has(r));
  if (armed.length === 0) return { action: 'hysteresis', rules: holding };
  if (state.lastRunEndedAt !== undefined && now - state.lastRunEndedAt < cooldownMs) {
    return { action: 'cooldown', rules: armed, untilMs: state.lastRunEndedAt + cooldownMs };
  }
  return { action: 'start', rules: armed };
}

/** A run ended: start the cooldown; on success, disarm the rules that started it. */
export function runEnded(state: TriggerState, rules: readonly string[], succeeded: boolean, now: number): void {
  state.lastRunEndedAt = now;
  if (succeeded) for (const r of rules) state.disarmed.add(r);
}
