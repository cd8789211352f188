/**
 * etcd's flags as environment variables, and the systemd EnvironmentFile= format they usually live in
 * (kubespray's /etc/etcd.env). etcd reads `ETCD_<FLAG>` (upper case, dashes as underscores) for every flag the
 * command line does not set; the command line wins. Pure functions: no file access here.
 */
import { StepError } from '../util/errors.ts';

/** `quota-backend-bytes` → `ETCD_QUOTA_BACKEND_BYTES`. */
export function flagEnvName(flag: string): string {
  return `ETCD_${flag.replace(/^-+/, '').toUpperCase().replace(/-/g, '_')}`;
}

/** `ETCD_QUOTA_BACKEND_BYTES` → `quota-backend-bytes`; undefined for names that are not ETCD_ flags. */
export function envFlagName(name: string): string | undefined {
  const m = /^ETCD_([A-Z0-9_]+)$/.exec(name);
  return m ? m[1]!.toLowerCase().replace(/_/g, '-') : undefined;
}

interface Assignment {
  key: string;
  value: string;
  /** Lines [first, last] the assignment spans (a value continued with a trailing backslash spans several). */
  first: number;
  last: number;
}

/** Unquote a value as systemd does: "…" with \" \\ \n escapes, '…' literal, otherwise as written (trimmed). */
function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(["\\$`n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/**
 * The assignments of an EnvironmentFile, in order (a later one for the same key wins, as in systemd): `KEY=VALUE`
 * lines; `#` and `;` start comment lines; a trailing backslash continues the value on the next line.
 */
export function parseEnvFile(text: string): Assignment[] {
  const lines = text.split('\n');
  const out: Assignment[] = [];
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    let line = lines[i]!.replace(/\r$/, '');
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.replace(/\r$/, '');
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(t);
    if (!m) continue; // systemd ignores what it cannot parse, with a warning
    out.push({ key: m[1]!, value: unquote(m[2]!), first, last: i });
  }
  return out;
}

/** The value systemd would give a key from this file's text (the last assignment). */
export function envFileValue(text: string, key: string): string | undefined {
  return parseEnvFile(text).filter((a) => a.key === key).at(-1)?.value;
}

/** A value as an EnvironmentFile line needs it: plain when safe, else double-quoted with escapes. */
function quoteValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new StepError('invalid', `an environment value cannot contain a line break: ${JSON.stringify(value)}`);
  return /^[A-Za-z0-9._:/@,+=%-]*$/.test(value) ? value : `"${value.replace(/(["\\$`])/g, '\\$1')}"`;
}

/**
 * The file's text with `key` set to `value`: every assignment of the key rewritten in place (so none later in
 * the file undoes it), or one line appended when the key is absent. Everything else stays byte for byte.
 */
export function setEnvFileValue(text: string, key: string, value: string): { text: string; changed: boolean; previous?: string } {
  const found = parseEnvFile(text).filter((a) => a.key === key);
  const previous = found.at(-1)?.value;
  if (previous === value && found.every((a) => a.value === value)) return { text, changed: false, previous };
  const line = `${key}=${quoteValue(value)}`;
  let out: string;
  if (found.length === 0) {
    out = text === '' || text.endsWith('\n') ? `${text}${line}\n` : `${text}\n${line}\n`;
  } else {
    const lines = text.split('\n');
    for (const a of [...found].reverse()) lines.splice(a.first, a.last - a.first + 1, line);
    out = lines.join('\n');
  }
  if (envFileValue(out, key) !== value) throw new StepError('failed', `setting ${key} in the environment file did not read back; nothing was changed`);
  return previous === undefined ? { text: out, changed: true } : { text: out, changed: true, previous };
}

/**
 * argv with the flags an environment gives (ETCD_* variables whose flag the command line does not set) appended
 * as `--flag=value`: the command line etcd effectively runs with.
 */
export function withEnvFlags(argv: string[], env: Record<string, string>, has: (argv: string[], flag: string) => boolean): string[] {
  const out = [...argv];
  for (const [k, v] of Object.entries(env)) {
    const flag = envFlagName(k);
    if (flag && !has(argv, flag)) out.push(`--${flag}=${v}`);
  }
  return out;
}
