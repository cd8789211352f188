/** `runbook diagnose` for a terminal: the cluster line, a member table, certificates, findings, what to run. */
import { colors } from '../events/terminal.ts';
import { formatBytes } from '../util/units.ts';
import { describeExpiry } from './certs.ts';
import type { Diagnosis } from './types.ts';

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

const pct = (r: number | undefined) => (r === undefined ? '?' : `${Math.round(r * 100)}%`);

export function formatDiagnosis(d: Diagnosis, opts: { color: boolean }): string {
  const c = colors(opts.color);
  const verdict = d.status === 'critical' ? c.red('CRITICAL') : d.status === 'warning' ? c.yellow('WARNING') : c.green('HEALTHY');
  const lines: string[] = [`${c.bold(`cluster ${d.cluster}`)} ${c.dim(`(${d.source})`)}: ${verdict}`];
  const facts: string[] = [];
  facts.push(d.leader ? `leader ${d.leader.name}` : 'no leader');
  if (d.raftTerm !== null) facts.push(`raft term ${d.raftTerm}`);
  if (d.clusterId) facts.push(`cluster id ${d.clusterId}`);
  if (d.revision !== null) {
    facts.push(
      `revision ${d.revision}${d.compactRevision !== null ? `, last compaction ${d.compactRevision ? `at ${d.compactRevision}` : 'never'} (gap ${d.compactionGap})` : ''}`,
    );
  }
  lines.push(`  ${facts.join(' · ')}`);

  const rows: string[][] = [['member', 'role', 'db size', 'in use', 'frag', 'quota (source)', 'usage', 'revision', 'term', 'version']];
  for (const m of d.members) {
    if (!m.reachable) {
      // Not read for want of credentials or trust is not down: say which.
      const role = m.errorClass === 'auth' ? 'NO CREDENTIALS' : m.errorClass === 'tls' ? 'TLS REFUSED' : 'DOWN';
      rows.push([m.name, role, '', '', '', `${formatBytes(m.quotaBytes)} (${m.quotaSource})`, '', '', '', `${m.version ?? ''} ${m.error ?? ''}`.trim()]);
      continue;
    }
    rows.push([
      m.name,
      m.isLeader ? 'leader' : m.isLearner ? 'learner' : 'follower',
      m.dbSize !== undefined ? formatBytes(m.dbSize) : '?',
      m.dbSizeInUse !== undefined ? formatBytes(m.dbSizeInUse) : '?',
      pct(m.fragmentation),
      `${formatBytes(m.quotaBytes)} (${m.quotaSource})`,
      pct(m.usage),
      String(m.revision ?? '?'),
      String(m.raftTerm ?? '?'),
      m.version ?? '?',
    ]);
  }
  const [head, ...body] = table(rows);
  lines.push(c.dim(`  ${head}`), ...body.map((r, i) => (d.members[i]!.reachable ? `  ${r}` : c.red(`  ${r}`))));
  for (const m of d.members) {
    if (m.flags) {
      const ac = m.autoCompactionDisabled ? 'auto-compaction off' : `auto-compaction ${m.flags.autoCompactionMode ?? 'periodic'} ${m.flags.autoCompactionRetention}`;
      lines.push(c.dim(`  ${m.name} flags (${m.flags.from}): ${ac}`));
    } else if (m.flagsNote) {
      lines.push(c.dim(`  ${m.name}: ${m.flagsNote}`));
    }
  }
  lines.push(`  alarms: ${d.alarms.length ? c.red(d.alarms.map((a) => `${a.alarm} on ${a.member} (${a.memberId})`).join(', ')) : 'none'}`);
  if (d.learners.length) lines.push(`  learners: ${d.learners.join(', ')}`);
  if (d.certificates.length) {
    lines.push('  certificates:');
    for (const cert of d.certificates) {
      const mark = cert.status === 'ok' ? c.green('✓') : cert.status === 'expiring' || cert.status === 'unreadable' ? c.yellow('!') : c.red('✗');
      lines.push(`    ${mark} ${cert.role}: ${cert.path} — ${describeExpiry(cert)}`);
    }
  }
  for (const n of d.notes) lines.push(c.dim(`  note: ${n}`));
  if (d.findings.length) {
    lines.push('findings:');
    for (const f of d.findings) {
      const mark = f.severity === 'critical' ? c.red('✗ critical') : f.severity === 'warning' ? c.yellow('! warning ') : c.dim('· info    ');
      lines.push(`  ${mark}  ${f.message}`);
    }
  } else {
    lines.push(c.green('no findings'));
  }
  if (d.recommendations.length) {
    lines.push('recommended:');
    d.recommendations.forEach((r, i) => {
      lines.push(`  ${i + 1}. ${r.runbook ? `${c.bold(r.runbook)}: ` : ''}${r.reason}`);
      if (r.plan) lines.push(`     ${r.plan}    ${c.dim('# dry run first')}`);
      if (r.command) lines.push(`     ${r.command}`);
    });
  }
  return lines.join('\n');
}
