/**
 * The audit log: one JSON object per line, appended and fsync'd, never rewritten. Who asked for what, from where,
 * what was authorized or refused and why, every approval and every run outcome.
 *
 * Writes are group-committed (records that arrive while a write is in flight go out together, then one fsync),
 * so a burst of refused requests cannot stall the server on fsync. Known secret values are scrubbed from every
 * record before it is written, as a last line of defence: nothing should put them there in the first place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mkdirp } from '../common.ts';

export interface AuditRecord {
  event: string;
  /** slack | mattermost | alertmanager | http | server */
  source: string;
  outcome?: 'accepted' | 'refused' | 'ok' | 'failed' | string;
  reason?: string;
  remote?: string;
  user?: string;
  userName?: string;
  channel?: string;
  command?: string;
  runbook?: string;
  cluster?: string;
  runId?: string;
  stepId?: string;
  [k: string]: unknown;
}

export interface AuditLog {
  readonly file: string;
  record(rec: AuditRecord): void;
  /** Resolves when everything recorded so far is on disk. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function scrubber(secrets: readonly string[]): (s: string) => string {
  const list = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  return (s: string) => {
    let out = s;
    for (const secret of list) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    return out;
  };
}

export function openAuditLog(
  file: string,
  secrets: readonly string[] = [],
  /** Also hand every (scrubbed) record here, e.g. to a shared store that all `serve` replicas write to. */
  mirror?: (record: Record<string, unknown>) => void,
): AuditLog {
  mkdirp(path.dirname(file));
  const fd = fs.openSync(file, 'a', 0o600);
  const scrub = scrubber(secrets);
  let pending: string[] = [];
  let writing: Promise<void> | undefined;
  let closed = false;
  let failures = 0;

  const writeBatch = async (): Promise<void> => {
    while (pending.length) {
      const batch = pending.join('');
      pending = [];
      try {
        await new Promise<void>((resolve, reject) => fs.write(fd, batch, (err) => (err ? reject(err) : resolve())));
        await new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
      } catch (err) {
        failures++;
        if (failures <= 3) process.stderr.write(`runbook serve: cannot write the audit log ${file}: ${(err as Error).message}\n`);
      }
    }
  };

  const kick = () => {
    if (writing) return;
    writing = writeBatch().finally(() => {
      writing = undefined;
      if (pending.length) kick();
    });
  };

  return {
    file,
    record(rec) {
      if (closed) return;
      const line = scrub(JSON.stringify({ ts: new Date().toISOString(), ...rec }));
      pending.push(`${line}\n`);
      kick();
      if (mirror) {
        try { mirror(JSON.parse(line) as Record<string, unknown>); } catch { /* the local log has it */ }
      }
    },
    async flush() {
      for (let i = 0; i < 1000 && (writing || pending.length); i++) {
        if (!writing) kick();
        await writing;
      }
    },
    async close() {
      await this.flush();
      closed = true;
      fs.closeSync(fd);
    },
  };
}
