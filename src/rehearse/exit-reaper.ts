/**
 * Throwaway clusters' members are killed when this process ends: on exit (best effort), and with signals also when
 * SIGINT/SIGTERM/SIGHUP ends it (members run in their own sessions, so a Ctrl-C does not reach them).
 */

/** What the reaper kills: a cluster's own members, synchronously (an exit hook cannot wait). */
export interface Reapable {
  killAllSync(): void;
}

const live = new Set<Reapable>();
let exitHookInstalled = false;
let signalHooksInstalled = false;

function killEverything(): void {
  for (const cluster of live) cluster.killAllSync();
}

/** Install the exit hook (once), and with `withSignals` the signal hooks (once). */
export function installExitHooks(withSignals: boolean): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killEverything);
  }
  if (!withSignals || signalHooksInstalled) return;
  signalHooksInstalled = true;
  // Members run in their own sessions, so a signal that ends this process does not reach them: forward the end.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killEverything();
      // Nobody else handles it: die of the signal as we would have without this listener.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** Kill this cluster's members when the process ends (until forgetOnExit). */
export function reapOnExit(cluster: Reapable): void {
  live.add(cluster);
}

/** The cluster was torn down or detached: leave it alone at exit. */
export function forgetOnExit(cluster: Reapable): void {
  live.delete(cluster);
}
