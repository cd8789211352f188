/** `runbook guard`: watch one cluster read-only and run nospace-prevention before NOSPACE can happen. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../common.ts';
import { json, type Io } from './output.ts';
import { stateDirOf } from './runs.ts';
import { resolveInventory, targetOptions, type TargetOpts } from './target.ts';
import { mkdirp } from '../common.ts';
import { untilSignal } from './signals.ts';

interface GuardFlags extends TargetOpts {
  interval?: string;
  cooldown?: string;
  rule: string[];
  param: string[];
  runbook?: string;
  approval?: string;
  learnerMax?: string;
  unevenMinBytes?: string;
  stateDir?: string;
  auditFile?: string;
  listen?: string;
  json?: boolean;
  once?: boolean;
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** `--rule name=expr` flags → overrides ("off" removes a default rule). */
export function parseRuleFlags(flags: readonly string[]): Record<string, string | false> {
  const out: Record<string, string | false> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UserError(`--rule ${JSON.stringify(f)}: expected name=expression (or name=off)`);
    const name = f.slice(0, eq).trim();
    if (Object.hasOwn(out, name)) throw new UserError(`--rule ${name} is given twice`);
    const expr = f.slice(eq + 1).trim();
    out[name] = expr === 'off' ? false : expr;
  }
  return out;
}

export function registerGuardCommand(program: Command, io: Io): void {
  targetOptions(
    program
      .command('guard')
      .description('watch a cluster read-only (status and /metrics of every member) and run nospace-prevention when a rule holds; report what it cannot fix'),
  )
    .option('--interval <duration>', 'time between polls', '30s')
    .option('--cooldown <duration>', 'no new run within this time after the last one ended', '30m')
    .option('--rule <name=expr>', 'replace or add a rule (CEL over cluster and members), or name=off to drop one (repeatable)', collect, [])
    .option('-p, --param <key=value>', 'a param of the prevention runbook, e.g. keepRevisions=10000 (repeatable)', collect, [])
    .option('--runbook <name|file>', 'the prevention runbook', 'nospace-prevention')
    .option('--approval <policy|required>', "policy: the runbook's own (nospace-prevention runs unattended); required: a human approves every change", 'policy')
    .option('--learner-max <duration>', 'report a member that stays a learner longer than this', '10m')
    .option('--uneven-min-bytes <bytes>', 'report voters whose db sizes differ by at least this much (and by half)', '64MiB')
    .option('--state-dir <dir>', 'where runs are kept (default $RUNBOOK_STATE_DIR or ~/.local/state/runbook)')
    .option('--audit-file <file>', 'audit log (default <state dir>/audit.jsonl)')
    .option('--listen <host:port>', 'serve /metrics and /healthz here')
    .option('--json', 'print every event (polls, rule evaluations, decisions, run records, findings) as JSON lines')
    .option('--once', 'poll once, print what the rules and findings say, and exit (no run is started)')
    .addHelpText(
      'after',
      `
Default rules (override with --rule NAME=EXPR, drop with --rule NAME=off):
  quota-use      members.exists(m, m.reachable && m.usage > 0.8)
  fragmentation  members.exists(m, m.reachable && m.fragmentation > 0.5 && m.reclaimable >= 100 * 1024 * 1024)
  history        cluster.autoCompaction != true && cluster.history > 1000000
Variables: members[] {name, reachable, leader, learner, dbSize, dbInUse, quota, quotaSource, usage, fragmentation,
reclaimable, revision, compactRevision, alarms, version, error}; cluster {name, members, reachable, leader, revision,
compactRevision, compactionKnown, history, autoCompaction, kubernetes, alarms}.
Stop with Ctrl-C or SIGTERM: a run in progress is interrupted and the next guard resumes it.`,
    )
    .action(async (opts: GuardFlags) => {
      const { guardConfig } = await import('../authoring.ts');
      const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      if (opts.approval !== 'policy' && opts.approval !== 'required') throw new UserError(`--approval: expected policy or required, got ${JSON.stringify(opts.approval)}`);
      const config = guardConfig({
        ...(opts.interval !== undefined ? { interval: opts.interval } : {}),
        ...(opts.cooldown !== undefined ? { cooldown: opts.cooldown } : {}),
        rules: parseRuleFlags(opts.rule ?? []),
        ...(opts.runbook ? { runbook: opts.runbook } : {}),
        approval: opts.approval,
        ...(opts.learnerMax !== undefined ? { learnerMax: opts.learnerMax } : {}),
        ...(opts.unevenMinBytes !== undefined ? { unevenMinBytes: opts.unevenMinBytes } : {}),
      }, (k) => (k === 'rules' ? '--rule' : flag(k)));
      let listen: { host: string; port: number } | undefined;
      if (opts.listen) {
        const { parseListen } = await import('../chatops/config.ts');
        listen = parseListen(opts.listen);
        if (!listen) throw new UserError(`--listen: expected host:port, got ${JSON.stringify(opts.listen)}`);
      }
      const inventory = await resolveInventory(opts, io);
      const { findRunbook, loadRunbookText, parseParamFlags, resolveParams } = await import('../authoring.ts');
      const file = findRunbook(config.runbook);
      const runbookText = fs.readFileSync(file, 'utf8');
      const runbook = loadRunbookText(runbookText, file);
      if (crypto.createHash('sha256').update(runbookText).digest('hex') !== runbook.source.hash) throw new UserError(`${file} changed while it was being read; try again`);
      const params = resolveParams(runbook, parseParamFlags(opts.param ?? []));
      const stateDir = stateDirOf(opts, io);
      mkdirp(stateDir);

      const { ClusterGuard } = await import('../operations.ts');
      const { createGuardMetrics } = await import('../operations.ts');
      const { formatGuardEvent } = await import('../operations.ts');
      const { openAuditLog } = await import('../chatops/audit.ts');
      const metrics = createGuardMetrics({ defaultMetrics: true });
      const audit = opts.once ? undefined : openAuditLog(opts.auditFile ?? path.join(stateDir, 'audit.jsonl'));
      const operator = io.env.RUNBOOK_OPERATOR || `${os.userInfo().username}@${os.hostname()}`;
      const guard = new ClusterGuard({
        inventory, config, runbook, runbookText, params, stateDir, metrics, operator,
        ...(audit ? { audit } : {}),
        registry: async () => (await import('../engine.ts')).createRegistry(),
        onEvent: (e) => {
          if (opts.once) return; // --once prints one summary below
          if (opts.json) return io.out(JSON.stringify(e));
          const line = formatGuardEvent(e);
          if (line) io.out(line);
        },
      });

      if (opts.once) {
        const facts = await guard.tick({ act: false });
        const { evaluateRules } = await import('../operations.ts');
        const rules = evaluateRules(config.rules, facts);
        if (opts.json) io.out(json({ facts, rules, findings: guard.findings }));
        else {
          const { summarize } = await import('../operations.ts');
          io.out(`${inventory.name}: ${summarize(facts)}`);
          for (const r of rules) io.out(`  rule ${r.rule}: ${r.error ? `error: ${r.error}` : r.holds ? 'HOLDS' : 'clear'}`);
          for (const f of guard.findings) io.out(`  ${f.severity}: ${f.message}`);
        }
        await guard.stop('--once');
        return;
      }

      const server = listen ? await (await import('../operations.ts')).serveMetrics(metrics.registry, listen) : undefined;
      if (server) io.err(`runbook guard: metrics on ${server.url}/metrics`);
      guard.start();
      await untilSignal('runbook guard', (l) => io.err(l), () => 'stopping (a run in progress is interrupted; the next guard resumes it)', async (sig) => {
        await guard.stop(sig).finally(async () => {
          await server?.close();
          await audit?.close();
        });
      });
    });
}
