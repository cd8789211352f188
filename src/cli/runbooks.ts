/** Commands that read runbooks only: list, show, validate, schema. They load no etcd client (fast cold start). */
import fs from 'node:fs';
import type { Command } from 'commander';
import { ExitCode, UserError, formatDiagnostic } from '../common.ts';
import { formatDuration } from '../common.ts';
import { json, type Io } from './output.ts';
import { setExit } from './exit.ts';

export function registerRunbookCommands(program: Command, io: Io): void {
  program
    .command('list')
    .description('list the built-in runbooks and those on RUNBOOK_PATH')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { listRunbooks, loadRunbook } = await import('../authoring.ts');
      const all = listRunbooks().map((r) => {
        let summary = '';
        try {
          summary = loadRunbook(r.file).summary;
        } catch {
          summary = '(invalid: run `runbook validate` on it)';
        }
        return { ...r, summary };
      });
      if (opts.json) return io.out(json(all));
      const w = Math.max(...all.map((r) => r.name.length), 4);
      for (const r of all) io.out(`${r.name.padEnd(w)}  ${r.summary}${r.builtIn ? '' : `  (${r.file})`}`);
    });

  program
    .command('show')
    .description('show a runbook: params, steps, and the compiled state machine (--mermaid)')
    .argument('<runbook>', 'built-in name or path to a runbook file')
    .option('--mermaid', 'print the compiled machine as a Mermaid state diagram')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { mermaid?: boolean; json?: boolean }) => {
      const { findRunbook, loadRunbook, toMermaid, catalog } = await import('../authoring.ts');
      const rb = loadRunbook(findRunbook(name));
      if (opts.mermaid) return io.out(toMermaid(rb));
      if (opts.json) return io.out(json(rb));
      io.out(`${rb.name} — ${rb.summary}`);
      io.out(`file ${rb.source.file}  sha256 ${rb.source.hash.slice(0, 16)}${rb.destructive ? '  destructive' : ''}`);
      if (rb.description) io.out(`\n${rb.description.trimEnd()}`);
      if (rb.params.length) {
        io.out('\nparams:');
        for (const p of rb.params) {
          const dflt = p.default !== undefined ? ` (default ${JSON.stringify(p.default)})` : p.optional ? ' (optional)' : ' (required)';
          io.out(`  ${p.name}: ${p.type}${dflt}${p.description ? ` — ${p.description}` : ''}`);
        }
      }
      io.out('\nsteps:');
      rb.steps.forEach((s, i) => {
        const meta = (catalog as Record<string, { mutates: boolean }>)[s.action];
        const tags = [
          meta?.mutates ? 'mutates' : 'read-only',
          s.forEach ? (s.forEach.kind === 'members' ? `for each ${s.forEach.members} (${s.forEach.order})` : `for each of ${s.forEach.items}`) : '',
          s.gate ? `gate ${s.gate}` : '',
          s.approval === 'required' || s.action === 'approve' ? 'needs approval' : '',
          s.timeoutMs ? `timeout ${formatDuration(s.timeoutMs)}` : '',
          s.retry.maximumAttempts > 1 ? `${s.retry.maximumAttempts} attempts` : '',
          s.optional ? 'optional' : '',
        ].filter(Boolean);
        io.out(`  ${String(i + 1).padStart(2)}. ${s.id}  ${s.action}  [${tags.join(', ')}]`);
        if (s.when) io.out(`      when ${s.when}`);
        if (s.description) io.out(`      ${s.description}`);
      });
    });

  program
    .command('validate')
    .description('check runbook files and inventories (cluster.yaml); every problem is printed as file:line:col: message')
    .argument('<files...>', 'runbook files (or built-in names), or inventories (a file with members: and no steps:)')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], opts: { json?: boolean }, cmd: Command) => {
      const { findRunbook, validateFiles } = await import('../authoring.ts');
      const { validateInventoryFile, looksLikeInventory } = await import('../authoring.ts');
      const paths = files.map((f) => (fs.existsSync(f) ? f : findRunbook(f)));
      const results = paths.map((p) => (looksLikeInventory(p) ? validateInventoryFile(p) : validateFiles([p])[0]!));
      const bad = results.filter((r) => r.diagnostics.length > 0);
      if (opts.json) io.out(json(results));
      else {
        for (const r of results) {
          if (r.diagnostics.length === 0) io.out(`${r.file}: ok`);
          for (const d of r.diagnostics) io.err(formatDiagnostic(d));
        }
      }
      if (bad.length) setExit(cmd, ExitCode.invalidInput);
    });

  program
    .command('schema')
    .description('print the JSON Schema of the runbook format (for yaml-language-server and editors)')
    .action(async () => {
      const { runbookJsonSchema } = await import('../authoring.ts');
      io.out(JSON.stringify(runbookJsonSchema(), null, 2));
    });

  program
    .command('actions')
    .description('list the actions a runbook can use, with their inputs')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { catalog } = await import('../authoring.ts');
      const rows = Object.values(catalog).map((a) => ({ name: a.name, summary: a.summary, mutates: a.mutates, idempotent: a.idempotent, perMember: a.perMember ?? null }));
      if (opts.json) return io.out(json(rows));
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) io.out(`${r.name.padEnd(w)}  ${r.mutates ? 'mutates  ' : 'read-only'}  ${r.summary}`);
    });
}

export function notFound(what: string): never {
  throw new UserError(what);
}
