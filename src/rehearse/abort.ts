/** Interrupting a throwaway cluster's start or a fault injection (Ctrl-C, or a rehearsal cut short). */

class Aborted extends Error {
  override name = 'AbortError';
}

/** Throws an abort error (see isAbortError) when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new Aborted(`${what}: interrupted`);
}

/** Did this error come from an aborted signal (a Ctrl-C during the start or a fault injection)? */
export function isAbortError(err: unknown): boolean {
  return err instanceof Aborted;
}
