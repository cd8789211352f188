/**
 * `action: script`: a zx script, a file next to the runbook, run as a child process by zx's own CLI (so `$`, `fs`,
 * `path`, `echo`… are globals and the script needs no install of its own).
 *
 * What a step knows reaches the script as data, never as code: $RUNBOOK_INPUT is one JSON document (`args` from
 * the step's `with`, after template rendering, the run's params, earlier steps' journaled outputs, the forEach
 * item, the inventory's members). Inside the script, zx's `$` quotes every interpolated value, so a parameter such
 * as `$(touch /tmp/x)` stays a string. etcdctl and kubectl find the cluster the way they always do: ETCDCTL_*
 * (endpoints, TLS files, user) and KUBECONFIG are set from the inventory, and the inventory's etcdBinDir is first
 * on PATH.
 *
 * A script reports a result by writing JSON to the file named by $RUNBOOK_RESULT (optional); the step's output
 * (journaled) is that result with the exit code and the tail of what the script printed. Exit 0 is success. A
 * `probe` script gets the same data with RUNBOOK_PHASE=probe: exit 0 means the effect is already there.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { authPassword } from '../inventory/endpoints.ts';
import type { Inventory } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

type ScriptInput = ActionInput<'script'>;

export interface ScriptOutput {
  exitCode: number;
  output: string;
  result?: unknown;
}

/** A result bigger than this is a script bug (a journal record is no place for bulk data). */
const MAX_RESULT_BYTES = 256 * 1024;

let zxCli: string | undefined;
/** zx's CLI from the installed package (works from src/ and from the bundle in dist/ alike). */
function zxCliPath(): string {
  zxCli ??= path.join(path.dirname(createRequire(import.meta.url).resolve('zx/package.json')), 'build', 'cli.js');
  return zxCli;
}

/** The document a script reads from $RUNBOOK_INPUT. */
function inputDocument(ctx: ActionContext, input: ScriptInput): Record<string, unknown> {
  const item = ctx.item
    ? { key: ctx.item.key, index: ctx.item.index, value: ctx.item.value ?? null, ...(ctx.item.member ? { member: { name: ctx.item.member.name, clientURL: ctx.item.member.clientURL } } : {}) }
    : null;
  return {
    runId: ctx.runId,
    stepId: ctx.stepId,
    attempt: ctx.attempt,
    args: input.args ?? {},
    params: ctx.params,
    steps: Object.fromEntries(Object.entries(ctx.steps).map(([id, s]) => [id, { status: s.status, output: s.output ?? null }])),
    item,
    inventory: { name: ctx.inventory.name, members: ctx.inventory.members.map((m) => ({ name: m.name, clientURL: m.clientURL })) },
  };
}

/** etcdctl's and kubectl's own variables, from the inventory: a script calls them without flags. */
export function toolEnv(inv: Inventory, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {
    ETCDCTL_API: '3',
    ETCDCTL_ENDPOINTS: inv.members.map((m) => m.clientURL).join(','),
  };
  if (inv.tls?.cacert) out.ETCDCTL_CACERT = inv.tls.cacert;
  if (inv.tls?.cert) out.ETCDCTL_CERT = inv.tls.cert;
  if (inv.tls?.key) out.ETCDCTL_KEY = inv.tls.key;
  if (inv.tls?.insecureSkipVerify) out.ETCDCTL_INSECURE_SKIP_TLS_VERIFY = 'true';
  if (inv.auth) {
    // etcdctl takes "user:password" in one variable on every version; the child's environment is not logged.
    out.ETCDCTL_USER = `${inv.auth.username}:${authPassword(inv.auth, env, (f) => fs.readFileSync(f, 'utf8'))}`;
  }
  if (inv.kubernetes?.kubeconfig) out.KUBECONFIG = inv.kubernetes.kubeconfig;
  if (inv.kubernetes?.context) out.RUNBOOK_KUBE_CONTEXT = inv.kubernetes.context;
  if (inv.etcdBinDir) out.PATH = `${inv.etcdBinDir}${path.delimiter}${env.PATH ?? ''}`;
  return out;
}

function tail(text: string | undefined, n = 20): string {
  return (text ?? '').split('\n').slice(-n).join('\n').trim();
}

async function runScript(ctx: ActionContext, file: string, input: ScriptInput, phase: 'run' | 'probe'): Promise<ScriptOutput & { failed: boolean; why: string }> {
  if (!fs.existsSync(file)) throw new StepError('invalid', `script ${file} does not exist (scripts are found next to the runbook)`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-script-'));
  const resultFile = path.join(scratch, 'result.json');
  try {
    let tools: Record<string, string>;
    try {
      tools = toolEnv(ctx.inventory);
    } catch (err) {
      throw new StepError('invalid', `script ${path.basename(file)}: ${messageOf(err)}`);
    }
    const r = await execa(process.execPath, [zxCliPath(), file], {
      reject: false,
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 5_000,
      cwd: path.dirname(file),
      env: {
        ...tools,
        ...input.env,
        RUNBOOK_INPUT: JSON.stringify(inputDocument(ctx, input)),
        RUNBOOK_RESULT: resultFile,
        RUNBOOK_PHASE: phase,
        FORCE_COLOR: '0',
      },
      stdin: 'ignore',
      all: true,
      maxBuffer: 4 * 1024 * 1024,
    });
    if (r.isCanceled || r.isTerminated) {
      throw new StepError(ctx.signal.aborted && (ctx.signal.reason as StepError)?.kind === 'timeout' ? 'timeout' : 'cancelled', `script ${path.basename(file)} was stopped (${r.signal ?? 'cancelled'})`);
    }
    let result: unknown;
    if (fs.existsSync(resultFile)) {
      const size = fs.statSync(resultFile).size;
      if (size > MAX_RESULT_BYTES) throw new StepError('failed', `script ${path.basename(file)} wrote a ${size}-byte result to $RUNBOOK_RESULT (limit ${MAX_RESULT_BYTES})`);
      const text = fs.readFileSync(resultFile, 'utf8');
      if (text.trim()) {
        try {
          result = JSON.parse(text);
        } catch (err) {
          throw new StepError('failed', `script ${path.basename(file)} wrote a result that is not JSON to $RUNBOOK_RESULT: ${messageOf(err)}`);
        }
      }
    }
    const why = r.exitCode !== undefined ? `exited ${r.exitCode}` : (r.cause as Error | undefined)?.message ?? 'failed';
    return { exitCode: r.exitCode ?? -1, output: tail(r.all), ...(result !== undefined ? { result } : {}), failed: r.failed, why };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true }); // our own scratch dir: the result was read
  }
}

export const script: ImplementedAction = implement('script', {
  async probe(ctx, input) {
    if (!input.probe) return { done: false };
    const r = await runScript(ctx, input.probe, input, 'probe');
    return r.exitCode === 0
      ? { done: true, output: { exitCode: 0, output: r.output, ...(r.result !== undefined ? { result: r.result } : {}) }, detail: `probe ${path.basename(input.probe)} exited 0` }
      : { done: false, detail: `probe ${path.basename(input.probe)} ${r.why}` };
  },
  async plan(_ctx, input) {
    return `would run the zx script ${input.file}${input.args ? ` with args ${JSON.stringify(input.args)}` : ''}`;
  },
  async run(ctx, input) {
    if (!path.isAbsolute(input.file)) throw new StepError('invalid', `script: ${input.file} was not resolved against the runbook's directory (load runbooks with loadRunbook)`);
    const r = await runScript(ctx, input.file, input, 'run');
    if (r.failed) {
      throw new StepError('failed', `script ${path.basename(input.file)} ${r.why}${r.output ? `:\n${r.output}` : ''}`, ctx.item?.member ? { member: ctx.item.member.name } : {});
    }
    if (r.output) ctx.log(r.output);
    return { exitCode: r.exitCode, output: r.output, ...(r.result !== undefined ? { result: r.result } : {}) };
  },
});
