/**
 * Running the real `kubectl` (argv array, never a shell string) with the inventory's kubeconfig and context, and
 * the two checks the runbooks verify a control plane with: `get --raw /readyz` and every node Ready.
 *
 * The kubeconfig is passed by path and never read here; kubectl's stderr is cut short and scrubbed of anything
 * that looks like a credential before it reaches a message.
 */
import { execa } from 'execa';
import { StepError } from '../util/errors.ts';

export interface KubectlTarget {
  kubeconfig?: string;
  context?: string;
}

export interface KubectlOptions extends KubectlTarget {
  /** kubectl's own --request-timeout (default 10 s); the process is killed a little after it. */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
  /** --cache-dir for discovery (default: kubectl's, ~/.kube/cache). */
  cacheDir?: string;
  /** The kubectl program (default `kubectl` from PATH). */
  binary?: string;
}

export interface KubectlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Credentials that must never reach a log line, in case kubectl prints one (headers at high verbosity, URLs). */
export function scrub(text: string): string {
  return text
    .replace(/(authorization:\s*)(bearer|basic)\s+\S+/gi, '$1$2 <redacted>')
    .replace(/\bbearer\s+[A-Za-z0-9._~+/=-]{8,}/gi, 'Bearer <redacted>')
    .replace(/\b(token|password|client-key-data|client-certificate-data)(["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1$2<redacted>')
    .replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1<redacted>@');
}

/** kubectl's stderr for a message: credentials scrubbed, klog prefixes dropped, one line, bounded. */
export function shortStderr(stderr: string, max = 400): string {
  const lines = scrub(stderr)
    .split('\n')
    .map((l) => l.replace(/^[EWI]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] /, '').trim())
    .filter((l) => l !== '');
  const text = [...new Set(lines)].join(' | ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The global flags for a target (without the subcommand). */
export function kubectlArgs(opts: KubectlOptions): string[] {
  const secs = Math.max(1, Math.ceil((opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) / 1000));
  return [
    ...(opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : []),
    ...(opts.context ? ['--context', opts.context] : []),
    ...(opts.cacheDir ? ['--cache-dir', opts.cacheDir] : []),
    `--request-timeout=${secs}s`,
  ];
}

/**
 * Run kubectl once. Never rejects for a non-zero exit (that is the caller's to judge); throws a StepError when
 * kubectl cannot be run at all, and 'cancelled' when the signal aborts it.
 */
export async function runKubectl(args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  const binary = opts.binary ?? 'kubectl';
  const r = await execa(binary, [...kubectlArgs(opts), ...args], {
    reject: false,
    stdin: 'ignore',
    timeout: (opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) + 5_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    maxBuffer: 32 * 1024 * 1024,
    stripFinalNewline: false,
  });
  if (r.isCanceled) throw new StepError('cancelled', 'kubectl: cancelled');
  if (r.exitCode === undefined && !r.timedOut) {
    const code = (r.cause as NodeJS.ErrnoException | undefined)?.code;
    throw new StepError('failed', code === 'ENOENT' ? `${binary} not found in PATH` : `cannot run ${binary}: ${shortStderr(r.shortMessage ?? '')}`, {
      hint: 'install kubectl (Debian: apt-get install kubernetes-client) or put it in PATH',
    });
  }
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), timedOut: r.timedOut };
}

export type CheckResult = { ok: true; detail: string; nodes?: NodeReadiness[] } | { ok: false; detail: string; nodes?: NodeReadiness[] };

/**
 * The failing checks of a health endpoint's verbose body ("[-]etcd failed: reason withheld"), as kubectl quotes it
 * in "an error on the server (\"[+]ping ok\n[-]etcd failed: …\")".
 */
export function failedHealthChecks(text: string): string[] {
  return [...new Set(text.replace(/\\n/g, '\n').match(/\[-\][^\n"\\]*/g) ?? [])].map((l) => l.trim());
}

function failure(what: string, r: KubectlResult): string {
  if (r.timedOut) return `${what}: kubectl did not finish in time`;
  const checks = failedHealthChecks(r.stderr);
  const err = (checks.length > 0 ? shortStderr(checks.join('; ')) : '') || shortStderr(r.stderr) || shortStderr(r.stdout) || '(no output)';
  return `${what}: kubectl exited ${r.exitCode}: ${err}`;
}

/** `kubectl get --raw /readyz`: ok when it exits 0 and prints "ok". */
export async function checkReadyz(opts: KubectlOptions): Promise<CheckResult> {
  const r = await runKubectl(['get', '--raw', '/readyz'], opts);
  if (r.exitCode === 0 && r.stdout.trim() === 'ok') return { ok: true, detail: 'ok' };
  if (r.exitCode === 0) return { ok: false, detail: `readyz answered ${JSON.stringify(shortStderr(r.stdout, 200))}, not "ok"` };
  return { ok: false, detail: failure('readyz', r) };
}

export interface NodeReadiness {
  name: string;
  ready: boolean;
  /** The Ready condition's reason/message when not Ready. */
  reason?: string;
}

/** Readiness of every node in a `kubectl get nodes -o json` answer (pure). */
export function nodesFromJson(text: string): NodeReadiness[] {
  const list = JSON.parse(text) as { items?: { metadata?: { name?: string }; status?: { conditions?: { type?: string; status?: string; reason?: string; message?: string }[] } }[] };
  if (!Array.isArray(list.items)) throw new Error('not a list (no items)');
  return list.items.map((n) => {
    const c = n.status?.conditions?.find((x) => x.type === 'Ready');
    const ready = c?.status === 'True';
    const name = n.metadata?.name ?? '?';
    if (ready) return { name, ready };
    return { name, ready, reason: c ? `Ready=${c.status ?? '?'}${c.reason ? ` (${c.reason})` : ''}` : 'no Ready condition' };
  });
}

/** `kubectl get nodes -o json`: ok when there is at least one node and every node has Ready=True. */
export async function checkNodesReady(opts: KubectlOptions): Promise<CheckResult> {
  const r = await runKubectl(['get', 'nodes', '-o', 'json'], opts);
  if (r.exitCode !== 0) return { ok: false, detail: failure('nodes-ready', r) };
  let nodes: NodeReadiness[];
  try {
    nodes = nodesFromJson(r.stdout);
  } catch (err) {
    return { ok: false, detail: `nodes-ready: cannot read kubectl's answer: ${(err as Error).message}` };
  }
  if (nodes.length === 0) return { ok: false, detail: 'nodes-ready: no nodes are registered', nodes };
  const notReady = nodes.filter((n) => !n.ready);
  if (notReady.length > 0) {
    return { ok: false, detail: `nodes-ready: ${notReady.length} of ${nodes.length} not Ready: ${notReady.map((n) => `${n.name} ${n.reason}`).join(', ')}`, nodes };
  }
  return { ok: true, detail: `${nodes.length}/${nodes.length} Ready`, nodes };
}
