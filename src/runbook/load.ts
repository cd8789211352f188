/**
 * Load a runbook file: read (size-capped), parse YAML with positions, validate, and return the typed Runbook.
 * All problems come back at once as a UserError: its message is a one-line headline, its diagnostics point at
 * file:line:col (print each with formatDiagnostic).
 */
import { createHash } from 'node:crypto';
import { messageOf, UserError } from '../util/errors.ts';
import type { Diagnostic } from '../util/errors.ts';
import { parseYaml, readYamlFile } from '../util/yaml-source.ts';
import type { YamlSource } from '../util/yaml-source.ts';
import type { Runbook } from './model.ts';
import { validateRunbook } from './validate.ts';

/**
 * @example
 * const rb = loadRunbook('runbooks/nospace-recovery.yaml');
 * rb.steps.map((s) => s.id); // ['preflight', 'raise-quota', ...]
 */
export function loadRunbook(file: string): Runbook {
  const { source, bytes } = readYamlFile(file);
  return finish(source, sha256(bytes));
}

/** Same as loadRunbook for text already in memory; `file` is used in diagnostics. */
export function loadRunbookText(text: string, file: string): Runbook {
  return finish(parseYaml(text, file), sha256(Buffer.from(text, 'utf8')));
}

/** Validate files without throwing: every file gets its diagnostics (empty when valid). */
export function validateFiles(files: readonly string[]): { file: string; diagnostics: Diagnostic[] }[] {
  return files.map((file) => {
    try {
      loadRunbook(file);
      return { file, diagnostics: [] };
    } catch (err) {
      if (err instanceof UserError) {
        return { file, diagnostics: err.diagnostics.length ? err.diagnostics : [{ file, line: 1, col: 1, message: err.message }] };
      }
      // A bug of ours, not the file's: still reported as a diagnostic rather than a crash of `validate`.
      return { file, diagnostics: [{ file, line: 1, col: 1, message: `internal error while validating: ${messageOf(err)}` }] };
    }
  });
}

function finish(source: YamlSource, hash: string): Runbook {
  const { runbook, diagnostics } = validateRunbook(source, hash);
  if (runbook) return runbook;
  const n = diagnostics.length;
  throw new UserError(`${source.file}: invalid runbook (${n} problem${n === 1 ? '' : 's'})`, { diagnostics });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
