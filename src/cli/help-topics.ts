/** `runbook help TOPIC`: the few things an operator looks up in the middle of an incident, without the README. */

export const HELP_TOPICS: Record<string, { summary: string; text: string }> = {
  'exit-codes': {
    summary: 'what each exit code means',
    text: `Exit codes
  0    ok
  1    a run or check failed; the message names the step, the member, and how to resume
  2    invalid input (runbook, inventory, params, flags): each problem as file:line:col where there is a file
  3    stopped at an approval nobody here could give (no TTY, no --yes): resumable; the message has the
       exact 'runbook approve …' and 'runbook resume …' commands
  4    the cluster is locked by another run (the message names its run id, pid and host)
  5    a step was denied
  6    diagnose found something critical
  130  interrupted by SIGINT (Ctrl-C, also at an approval prompt); 143 by SIGTERM: resumable`,
  },
  approvals: {
    summary: 'approving, denying, and runs that wait',
    text: `Approvals
  A step with 'approval: required' (or an 'approve' step) waits for a decision, journaled.
  On a terminal:     a [y/N] prompt; Ctrl-C there interrupts (exit 130, resumable, nothing decided).
  Anywhere:          runbook approve RUN STEP   /   runbook deny RUN STEP --reason '…'
  Up front:          --yes (recorded as yours)
  No terminal:       the run stops at the approval with exit 3 and prints the commands; approve, then
                     runbook resume RUN. --wait-for-approval waits instead (for another terminal or chat).
  Where is it:       runbook status RUN  →  "waiting for approval of STEP since TIME" with the commands.`,
  },
  environment: {
    summary: 'environment variables runbook reads',
    text: `Environment
  RUNBOOK_INVENTORY     the inventory when -i is not given
  RUNBOOK_STATE_DIR     where runs are kept (else $XDG_STATE_HOME/runbook, else ~/.local/state/runbook)
  RUNBOOK_STORE         etcd://… management store for runs (like --store)
  RUNBOOK_PATH          colon-separated dirs with more runbooks
  RUNBOOK_OPERATOR      your name in journals and approvals (default user@host)
  RUNBOOK_DEBUG=1       stack traces for internal errors
  NO_COLOR              no colours
  etcdctl's, as etcdctl reads them: ETCDCTL_ENDPOINTS ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY ETCDCTL_USER
  ETCDCTL_PASSWORD ETCDCTL_DIAL_TIMEOUT ETCDCTL_COMMAND_TIMEOUT ETCDCTL_INSECURE_TRANSPORT
  ETCDCTL_INSECURE_SKIP_TLS_VERIFY ETCDCTL_WRITE_OUT; kubectl's KUBECONFIG (with --context).`,
  },
  etcdctl: {
    summary: 'the etcdctl and kubectl flags every cluster command takes',
    text: `etcdctl and kubectl flags (run, plan, diagnose; resume takes the credential and timeout ones)
  --endpoints URLS --cacert F --cert F --key F --user USER[:PASSWORD] --password P
  --dial-timeout D --command-timeout D --insecure-transport[=false] --insecure-skip-tls-verify
  -w, --write-out simple|json|table      wherever --json exists (json = --json)
  --kubeconfig F --context NAME          Kubernetes checks, also with --endpoints
  --user NAME alone on a terminal asks for the password (not echoed). A password from the command line is
  never stored with the run: resume takes --user again.`,
  },
  scripts: {
    summary: 'zx script steps (action: script)',
    text: `Script steps
  - id: check
    action: script
    with:
      file: checks/my-check.mjs      # next to the runbook; fixed (no template); validate reports a missing one
      args: { prefix: "\${{ params.prefix }}" }   # data: rendered to values, never spliced into code
      probe: checks/already-done.mjs  # optional: exit 0 = the effect is already there
      idempotent: true                # safe to run again after a crash
  The script runs under zx ($, fs, path, echo are globals). It reads JSON from $RUNBOOK_INPUT (args, params,
  steps with their outputs, item, inventory members), may write a JSON result to the file $RUNBOOK_RESULT
  (journaled as the step's output), and finds the cluster through ETCDCTL_* and KUBECONFIG.
  In exec steps, never put \${{ }} inside a shell's -c script: pass values in env ("$VALUE") or after it ($1).`,
  },
  completion: {
    summary: 'shell completion',
    text: `Shell completion
  bash:  source <(runbook completion bash)
  zsh:   runbook completion zsh > "\${fpath[1]}/_runbook"
  fish:  runbook completion fish > ~/.config/fish/completions/runbook.fish
  Runbook names are those known when the script is generated (built-ins and RUNBOOK_PATH).`,
  },
};
