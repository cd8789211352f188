/** "Did you mean": the closest known word to a misspelt one (keys, action names, runbook names). */

// The same typo repeated 40,000 times in a hostile file is worked out once.
const suggestions = new Map<string, string | undefined>();

/** The closest candidate to a misspelt word, if one is close enough to be a likely typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (!word || word.length > 200) return undefined;
  const memo = `${word}\u0000${candidates.join('\u0000')}`;
  if (suggestions.has(memo)) return suggestions.get(memo);
  const hint = closest(word, candidates);
  if (suggestions.size >= 2000) suggestions.clear();
  suggestions.set(memo, hint);
  return hint;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    if (cl === w) return c;
    let score = levenshtein(w, cl);
    // "defrag" for "etcd.defrag", "etcd.defragment" for "etcd.defrag": prefix/suffix matches are likely typos too.
    if (cl.endsWith(`.${w}`) || (w.length >= 4 && (cl.startsWith(w) || w.startsWith(cl)))) score = Math.min(score, 1.5);
    // "maxAttempts" for "maximumAttempts": an abbreviation that keeps the letters in order.
    else if (w.length >= 5 && w.length >= cl.length * 0.6 && isSubsequence(w, cl)) score = Math.min(score, 2);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  // Replacing every letter of a short word is not a typo ("z" is not a misspelt "x").
  if (bestScore >= Math.min(w.length, best.length)) return undefined;
  const limit = Math.max(2, Math.floor(Math.min(w.length, best.length) / 3));
  return bestScore <= limit ? best : undefined;
}

function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (let j = 0; j < long.length && i < short.length; j++) if (short[i] === long[j]) i++;
  return i === short.length;
}

function levenshtein(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return Math.abs(a.length - b.length);
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
