/**
 * What an etcd member's own log says about its data. A member that exits at start because its db or WAL is
 * damaged will exit the same way every time it is started: the caller stops at once instead of retrying.
 * Matched on etcd 3.4 and 3.5 logs (zap JSON and its Go panic/crash text).
 */

/**
 * Log messages that mean the member's data is damaged: no restart fixes them (measured: a db with its first 16 KiB
 * zeroed panics "failed to open database" / "invalid database"; a WAL with overwritten bytes is fatal "walpb: crc
 * mismatch"). The one list both members.start-all and members.try-restart read.
 */
const DATA_ERRORS: RegExp[] = [
  /failed to open database(?:[^\n]*?"error":"([^"]+)")?/, // bbolt meta pages zeroed/garbled: "invalid database"
  /invalid database/,
  /unexpected fault address/, // SIGBUS reading an mmap'd db cut short
  /failed to (?:recover|find|load) [^"\n]*(?:backend|snapshot|wal)[^"\n]*/i,
  /wal: [^"\n]*(?:crc mismatch|corrupt|unexpected EOF)[^"\n]*/i,
  /crc mismatch/,
  /\bpage \d+ already freed\b/,
  /checksum error/,
  /file size too small/,
  /failed to (?:recover v3 backend|find database snapshot file|read WAL|load v3 backend|recover from snapshot)/i,
  /wal: max entry size limit exceeded/i,
  /database file .* not found/i,
  /checksum mismatch/i,
];

const cut = (l: string) => (l.length > 400 ? `${l.slice(0, 400)}…` : l);

/**
 * The first line of a log summary (members-common summarizeLog) that shows a data error, as a human reads it: a
 * zap JSON line's msg, error and path; a plain line as it is. Undefined when no line does.
 */
export function permanentDataError(summary: string | undefined): string | undefined {
  if (!summary) return undefined;
  const line = summary.split('\n').find((l) => DATA_ERRORS.some((re) => re.test(l)));
  if (!line) return undefined;
  try {
    const j = JSON.parse(line) as { msg?: unknown; error?: unknown; path?: unknown };
    if (typeof j.msg === 'string') return [j.msg, typeof j.error === 'string' ? j.error : undefined, typeof j.path === 'string' ? j.path : undefined].filter(Boolean).join(': ');
  } catch {
    // plain text (etcd --logger=capnslog, or a Go panic line)
  }
  return cut(line);
}

/** The first data-damage message in a log excerpt, as a short phrase, or undefined when there is none. */
export function dataErrorIn(log: string): string | undefined {
  for (const re of DATA_ERRORS) {
    const m = re.exec(log);
    if (!m) continue;
    return (m[1] ? `failed to open database: ${m[1]}` : m[0]).slice(0, 160);
  }
  return undefined;
}
