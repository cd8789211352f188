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

