/** exec: run a command as an argv array (never a shell string), on the member's host when in a member forEach. */
import { execa } from 'execa';
import { StepError } from '../util/errors.ts';
import { remoteArgv } from '../exec/ssh.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

type ExecInput = ActionInput<'exec'>;

async function runArgv(ctx: ActionContext, argv: string[], input: ExecInput, what: string) {
  const ssh = ctx.item?.member?.ssh;
  const [file, ...args] = ssh ? remoteArgv(ssh, argv, input.env) : argv;
  const r = await execa(file!, args, {
    reject: false,
    cancelSignal: ctx.signal,
    forceKillAfterDelay: 5_000,
    ...(input.cwd && !ssh ? { cwd: input.cwd } : {}),
    ...(input.env && !ssh ? { env: input.env } : {}),
    stdin: 'ignore',
    all: true,
    maxBuffer: 4 * 1024 * 1024,
  });
  if (r.isCanceled || r.isTerminated) {
    throw new StepError(ctx.signal.aborted && (ctx.signal.reason as StepError)?.kind === 'timeout' ? 'timeout' : 'cancelled', `${what} was stopped (${r.signal ?? 'cancelled'})`);
  }
  return r;
}

function tail(text: string | undefined, n = 20): string {
  return (text ?? '').split('\n').slice(-n).join('\n').trim();
}

export const exec: ImplementedAction = implement('exec', {
  async probe(ctx, input) {
    if (!input.probe) return { done: false };
    const r = await runArgv(ctx, input.probe, input, 'probe');
    return r.exitCode === 0
      ? { done: true, output: { exitCode: 0, output: tail(r.all) }, detail: `probe ${JSON.stringify(input.probe)} exited 0` }
      : { done: false, detail: `probe exited ${r.exitCode}` };
  },
  async plan(_ctx, input) {
    return `would run ${JSON.stringify(input.argv)}`;
  },
  async run(ctx, input) {
    if (input.argv[0] === undefined || input.argv[0] === '') throw new StepError('invalid', 'exec: argv[0] is empty');
    const r = await runArgv(ctx, input.argv, input, JSON.stringify(input.argv));
    const output = tail(r.all);
    if (r.failed) {
      const why = r.exitCode !== undefined ? `exited ${r.exitCode}` : (r.cause as Error | undefined)?.message ?? 'failed';
      throw new StepError('failed', `${JSON.stringify(input.argv)} ${why}${output ? `:\n${output}` : ''}`, ctx.item?.member ? { member: ctx.item.member.name } : {});
    }
    if (output) ctx.log(output);
    return { exitCode: r.exitCode ?? 0, output };
  },
});
