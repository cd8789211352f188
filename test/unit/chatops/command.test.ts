import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../../src/chatops/command.ts';

describe('parseCommand', () => {
  it('parses run and plan with cluster and params', () => {
    expect(parseCommand('run nospace-recovery cluster=prod quotaBytes=8GiB keepRevisions=0')).toEqual({
      ok: true,
      command: { verb: 'run', runbook: 'nospace-recovery', cluster: 'prod', params: { quotaBytes: '8GiB', keepRevisions: '0' } },
    });
    expect(parseCommand('  plan   nospace-recovery\u00a0cluster=staging ')).toMatchObject({ ok: true, command: { verb: 'plan', cluster: 'staging', params: {} } });
    expect(parseCommand('status 20260101-120000-nospace-recovery-a1b2c3')).toEqual({ ok: true, command: { verb: 'status', runId: '20260101-120000-nospace-recovery-a1b2c3' } });
    expect(parseCommand('approve 20260101-120000-nospace-recovery-a1b2c3 compact')).toEqual({ ok: true, command: { verb: 'approve', runId: '20260101-120000-nospace-recovery-a1b2c3', stepId: 'compact' } });
    expect(parseCommand('deny 20260101-120000-nospace-recovery-a1b2c3 raise-quota')).toEqual({ ok: true, command: { verb: 'deny', runId: '20260101-120000-nospace-recovery-a1b2c3', stepId: 'raise-quota' } });
    expect(parseCommand('list')).toEqual({ ok: true, command: { verb: 'list' } });
    expect(parseCommand('')).toEqual({ ok: true, command: { verb: 'help' } });
  });

  it.each([
    ['run nospace-recovery', /which cluster/],
    ['run cluster=prod', /runbook name comes first/],
    ['run Nospace cluster=prod', /not a runbook name/],
    ['run nospace-recovery cluster=prod cluster=dev', /cluster is given twice/],
    ['run nospace-recovery cluster=prod a=1 a=2', /a is given twice/],
    ['run nospace-recovery cluster=prod free text', /expected key=value/],
    ['run nospace-recovery cluster=prod 1a=2', /not a valid key/],
    ['run nospace-recovery cluster=prod key_x=2', /not a valid key/],
    ['run nospace-recovery cluster=prod a=', /empty value/],
    ['run nospace-recovery cluster=prod a=$(reboot)', /not allowed/],
    ['run nospace-recovery cluster=prod a=`id`', /not allowed/],
    ['run nospace-recovery cluster=prod a=x;y', /not allowed/],
    ['run nospace-recovery cluster=<prod>', /not allowed/],
    ['run nospace-recovery cluster=prod a="x"', /not allowed/],
    ['status ../etc', /not a run id/],
    ['approve 20260101-120000-nospace-recovery-a1b2c3', /usage: approve <run-id> <step>/],
    ['deny 20260101-120000-nospace-recovery-a1b2c3 ../x', /not a step id/],
    ['list extra', /takes no arguments/],
    ['rm -rf /', /unknown command/],
  ])('refuses %j', (text, message) => {
    const r = parseCommand(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('limits value length, word count and text length', () => {
    expect(parseCommand(`run x cluster=prod a=${'v'.repeat(257)}`)).toMatchObject({ ok: false, error: expect.stringMatching(/too long/) });
    expect(parseCommand(`run x cluster=prod a=${'v'.repeat(20)}`, { maxValueLength: 10 })).toMatchObject({ ok: false });
    expect(parseCommand(`run x cluster=prod ${Array.from({ length: 30 }, (_, i) => `k${i}=1`).join(' ')}`)).toMatchObject({ ok: false, error: expect.stringMatching(/too many words/) });
    expect(parseCommand('x'.repeat(2000))).toMatchObject({ ok: false, error: expect.stringMatching(/too long/) });
  });

  it('never lets a value with shell or markup characters through', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (value) => {
      const r = parseCommand(`run nospace-recovery cluster=prod keep=${value}`);
      if (r.ok && r.command.verb === 'run') {
        for (const v of Object.values(r.command.params)) expect(v).toMatch(/^[A-Za-z0-9._:/@%+-]+$/);
      }
    }));
  });
});
