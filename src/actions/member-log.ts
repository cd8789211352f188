/**
 * What an etcd member's own log says about its data. A member that exits at start because its db or WAL is
 * damaged will exit the same way every time it is started: the caller stops at once instead of retrying.
 * Matched on etcd 3.4 and 3.5 logs (zap JSON and its Go panic/crash text).
 */

/** Log messages that mean the member's data is damaged: no restart fixes them. */
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
];

/** The first data-damage message in a log excerpt, as a short phrase, or undefined when there is none. */
export function dataErrorIn(log: string): string | undefined {
  for (const re of DATA_ERRORS) {
    const m = re.exec(log);
    if (!m) continue;
    return (m[1] ? `failed to open database: ${m[1]}` : m[0]).slice(0, 160);
  }
  return undefined;
}
