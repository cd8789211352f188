/**
 * `runbook completion bash|zsh|fish` and `runbook help TOPIC`. The bash script is run by the real bash with the
 * variables bash's completion sets (COMP_WORDS/COMP_CWORD); zsh and fish are not on this machine, so their scripts
 * are checked for the commands and options they must offer, not run.
 */
import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram, main } from '../../../src/cli/main.ts';
import type { Io } from '../../../src/cli/output.ts';

const bin = path.resolve(import.meta.dirname, '../../../bin/runbook.js');

function capture(): Io & { outText(): string; errText(): string } {
  const out: string[] = [];
  const err: string[] = [];
  return { out: (t) => out.push(t), err: (t) => err.push(t), isTTY: false, color: false, env: { ...process.env }, cwd: process.cwd(), outText: () => out.join('\n'), errText: () => err.join('\n') };
}

async function complete(script: string, words: string[]): Promise<string[]> {
  const r = await execa('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _runbook; printf '%s\\n' "\${COMPREPLY[@]}"`], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('runbook completion', () => {
  it('bash: commands, each command\'s own options, and runbook names', async () => {
    const io = capture();
    expect(await main(['completion', 'bash'], io)).toBe(0);
    const script = io.outText();
    expect(await complete(script, ['runbook', 'pl'])).toEqual(['plan']);
    expect(await complete(script, ['runbook', 'run', '--wait-f'])).toEqual(['--wait-for-approval']);
    expect(await complete(script, ['runbook', 'diagnose', '--comm'])).toEqual(['--command-timeout']);
    expect(await complete(script, ['runbook', 'status', '--wait-f'])).toEqual([]);
    expect(await complete(script, ['runbook', 'run', 'nospace-r'])).toContain('nospace-recovery');
  });

  it('zsh and fish name every command and its options; an unknown shell is a clear error', async () => {
    const program = buildProgram(capture());
    for (const shell of ['zsh', 'fish']) {
      const io = capture();
      expect(await main(['completion', shell], io)).toBe(0);
      for (const c of program.commands) expect(io.outText(), `${shell}: ${c.name()}`).toContain(c.name());
      expect(io.outText()).toContain(shell === 'fish' ? "-l 'insecure-skip-tls-verify'" : "'--insecure-skip-tls-verify'");
    }
    const io = capture();
    expect(await main(['completion', 'tcsh'], io)).toBe(2);
    expect(io.errText()).toMatch(/unknown shell "tcsh" \(bash, zsh or fish\)/);
  });
});

describe('runbook help TOPIC', () => {
  it('topics, commands, and a clear error for neither', async () => {
    const topic = await execa(process.execPath, [bin, 'help', 'exit-codes'], { reject: false });
    expect(topic.exitCode).toBe(0);
    expect(topic.stdout).toMatch(/^ {2}3 {4}stopped at an approval/m);
    const cmd = capture();
    expect(await main(['help', 'resume'], cmd)).toBe(0);
    expect(cmd.outText()).toMatch(/Usage: runbook resume/);
    const all = capture();
    expect(await main(['help'], all)).toBe(0);
    expect(all.outText()).toMatch(/Topics \(runbook help TOPIC\):[\s\S]*approvals/);
    const bad = capture();
    expect(await main(['help', 'nonsense'], bad)).toBe(2);
    expect(bad.errText()).toMatch(/no command or help topic "nonsense"/);
  });
});
