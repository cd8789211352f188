/**
 * One piece of work per key at a time: whoever asks for a key while its work is under way gets the same promise
 * (members restored at once share one read of the snapshot, one copy to their host); once it settles the key is
 * free, and the next ask starts the work anew (nothing is cached here).
 */
export function sharedWhileRunning<T>(running: Map<string, Promise<T>>, key: string, start: () => Promise<T>): Promise<T> {
  const already = running.get(key);
  if (already) return already;
  const work = start().finally(() => running.delete(key));
  running.set(key, work);
  return work;
}
