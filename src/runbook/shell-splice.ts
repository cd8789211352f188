/**
 * Where an argv hands a string to a shell as code: `[sh, -c, SCRIPT, …]`, also behind `env`, `sudo`, `nice`…, with
 * combined flags (`bash -euc`) and paths (`/bin/sh`). A `${{ }}` template inside SCRIPT would splice a value into
 * shell code (a param `$(rm -rf /)` runs); the same value as a later argv element or in `env` stays data.
 */

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'fish', 'busybox']);

/** Commands that run the rest of the argv as another command (their own flags are skipped over). */
const WRAPPERS = new Set(['env', 'sudo', 'doas', 'nice', 'ionice', 'nohup', 'timeout', 'setsid', 'chroot', 'nsenter', 'stdbuf', 'exec', 'command']);

function base(arg: string): string {
  return arg.slice(arg.lastIndexOf('/') + 1);
}

/**
 * Index of the argv element a shell runs as its script (the one after `-c`), or undefined when none does.
 *
 * @example
 * shellScriptIndex(['sh', '-c', 'echo "$1"', 'sh', 'x']) // 2
 * shellScriptIndex(['env', 'A=1', 'bash', '-euc', 'true']) // 3
 * shellScriptIndex(['echo', '-c', 'x']) // undefined
 */
export function shellScriptIndex(argv: readonly unknown[]): number | undefined {
  let i = 0;
  // Skip wrappers and what they take before the command (VAR=value, their flags, a timeout's duration).
  while (i < argv.length && typeof argv[i] === 'string' && WRAPPERS.has(base(argv[i] as string))) {
    i++;
    while (i < argv.length && typeof argv[i] === 'string' && !SHELLS.has(base(argv[i] as string))) {
      const a = argv[i] as string;
      if (a.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(a) || /^\d+(\.\d+)?[smhd]?$/.test(a)) i++;
      else break;
    }
  }
  const shell = argv[i];
  if (typeof shell !== 'string' || !SHELLS.has(base(shell))) return undefined;
  let j = i + 1;
  if (base(shell) === 'busybox') {
    if (typeof argv[j] !== 'string' || !SHELLS.has(argv[j] as string)) return undefined;
    j++;
  }
  // The shell's options up to the script: -c alone or combined (-ec, -euc, -xc); -o takes an argument.
  for (; j < argv.length; j++) {
    const a = argv[j];
    if (typeof a !== 'string' || !a.startsWith('-') || a === '-' || a === '--') return undefined;
    if (a === '-o' || a === '+o') {
      j++;
      continue;
    }
    if (/^-[A-Za-z]*c[A-Za-z]*$/.test(a)) return j + 1 < argv.length ? j + 1 : undefined;
  }
  return undefined;
}
