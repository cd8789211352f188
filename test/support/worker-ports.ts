/**
 * vitest setup file: each parallel worker takes the throwaway clusters' ports from its own slice of
 * 20000-31999 (RUNBOOK_PORT_RANGE, inherited by the CLI processes tests start). Without it, a worker could pick a
 * port of a cluster another worker killed a moment ago, and that test's restart then finds its port taken.
 * RUNBOOK_TEST_SLICE_OFFSET=k shifts a whole vitest run by k slices, so two runs on one machine (two checkouts, or
 * the CI matrix's legs run side by side) do not share slices either.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SLICE = 600; // 20 slices of 20000-31999; more workers than that share slices round-robin
const SLICES = 20;
const pool = Math.max(1, Number(process.env.VITEST_POOL_ID ?? '1') || 1);
const offset = Math.max(0, Number(process.env.RUNBOOK_TEST_SLICE_OFFSET ?? '0') || 0);
const lo = 20_000 + ((pool - 1 + offset) % SLICES) * SLICE;
process.env.RUNBOOK_PORT_RANGE ??= `${lo}-${lo + SLICE - 1}`;

// Run locks are machine-wide (/run/lock/runbook): a test that leaves a stale lock (a SIGKILLed runner) must not
// refuse the next test run that lands on the same ports. Each test file, and the CLI processes it starts, gets its
// own lock dir; tests of the lock itself choose theirs.
process.env.RUNBOOK_LOCK_DIR ??= mkdtempSync(join(tmpdir(), 'runbook-test-locks-'));
