/**
 * Where runbooks come from: a file path, a built-in (`<repo>/runbooks/<name>.yaml`), or a directory of the
 * colon-separated RUNBOOK_PATH. Built-ins win over RUNBOOK_PATH so a stray file cannot shadow
 * `nospace-recovery` during an incident; use a path to run a modified copy.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../util/errors.ts';
import { suggest } from '../util/suggest.ts';

/** The checkout (or installed package) this module belongs to: the nearest directory up with runbooks/ and
 * package.json. Walking up rather than a fixed `../../` keeps it right from src/ and from the bundle in dist/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'runbooks'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return fileURLToPath(new URL('../../', import.meta.url));
}

export const BUILTIN_DIR = path.join(packageRoot(), 'runbooks') + path.sep;

export interface RunbookEntry {
  name: string;
  file: string;
  builtIn: boolean;
}

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const EXTS = ['.yaml', '.yml'];

/**
 * Resolve a runbook name or file path to a file.
 * @example findRunbook('nospace-recovery') // '/…/runbooks/nospace-recovery.yaml'
 * @example findRunbook('./my-runbook.yaml') // './my-runbook.yaml'
 */
export function findRunbook(nameOrPath: string, env: Record<string, string | undefined> = process.env): string {
  if (isFile(nameOrPath)) return nameOrPath;
  if (/[\\/]/.test(nameOrPath) || EXTS.some((e) => nameOrPath.endsWith(e))) {
    throw new UserError(`no such runbook file: ${nameOrPath}`);
  }
  if (!NAME_RE.test(nameOrPath)) {
    throw new UserError(`${JSON.stringify(nameOrPath)} is neither a runbook file nor a runbook name (names are kebab-case, e.g. nospace-recovery)`);
  }
  for (const dir of searchDirs(env)) {
    for (const ext of EXTS) {
      const file = path.join(dir.dir, nameOrPath + ext);
      if (isFile(file)) return file;
    }
  }
  const known = listRunbooks(env).map((r) => r.name);
  const hint = suggest(nameOrPath, known);
  throw new UserError(
    `no runbook named ${JSON.stringify(nameOrPath)}${hint ? ` (did you mean "${hint}"?)` : ''}; ` +
      (known.length ? `available: ${known.join(', ')}` : 'none found') +
      ' (built-ins, then RUNBOOK_PATH; or give a file path)',
  );
}

/** Every runbook reachable by name: built-ins first, then RUNBOOK_PATH in order; the first of a name wins. */
export function listRunbooks(env: Record<string, string | undefined> = process.env): RunbookEntry[] {
  const out: RunbookEntry[] = [];
  const seen = new Set<string>();
  for (const { dir, builtIn } of searchDirs(env)) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const f of names) {
      const ext = EXTS.find((e) => f.endsWith(e));
      if (!ext) continue;
      const name = f.slice(0, -ext.length);
      if (!NAME_RE.test(name) || seen.has(name)) continue;
      const file = path.join(dir, f);
      if (!isFile(file)) continue;
      seen.add(name);
      out.push({ name, file, builtIn });
    }
  }
  return out;
}

function searchDirs(env: Record<string, string | undefined>): { dir: string; builtIn: boolean }[] {
  const dirs = [{ dir: BUILTIN_DIR, builtIn: true }];
  for (const d of (env.RUNBOOK_PATH ?? '').split(':')) {
    if (d.trim() !== '' && existsSync(d)) dirs.push({ dir: path.resolve(d), builtIn: false });
  }
  return dirs;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
