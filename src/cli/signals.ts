/** SIGINT/SIGTERM for CLI commands: abort the work (reason = the signal name); a second signal exits at once. */
export function abortOnSignals(): { signal: AbortSignal; interrupt(): void; dispose(): void } {
  const ac = new AbortController();
  const on = (sig: NodeJS.Signals) => () => {
    if (ac.signal.aborted) {
      process.stderr.write(`runbook: second ${sig}: exiting now; the journal is consistent up to the last record\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    ac.abort(sig);
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    /** What a SIGINT does, for a Ctrl-C that arrives as a keystroke (a prompt's raw-mode terminal). */
    interrupt: onInt,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}


/**
 * For a long-running command (serve, guard): wait for SIGINT/SIGTERM, say what stopping means, await `stop`, then
 * resolve; a second signal exits at once (130/143).
 */
export function untilSignal(name: string, say: (line: string) => void, what: (sig: NodeJS.Signals) => string, stop: (sig: NodeJS.Signals) => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const on = (sig: NodeJS.Signals) => {
      if (stopping) {
        say(`${name}: second ${sig}: exiting now; run journals are consistent up to their last record`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      say(`${name}: ${sig}: ${what(sig)}`);
      void stop(sig).catch(() => {}).finally(() => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        resolve();
      });
    };
    const onInt = () => on('SIGINT');
    const onTerm = () => on('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
