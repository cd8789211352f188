/**
 * The state dir as a run's store (src/store/file.ts): what the engine asks of any store — the run's lock, a journal
 * that keeps the machine snapshot beside it, the snapshot read back on resume — on the real filesystem.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../../../src/store/file.ts';
import { lockHolder } from '../../../src/store/machine-lock.ts';
import { files, runDir } from '../../../src/store/run-dir.ts';
import { newRunId } from '../../../src/store/run-id.ts';
import type { Inventory } from '../../../src/inventory/types.ts';

const inv = { name: 'c1', source: 'test', members: [{ name: 'm1', clientURL: 'http://127.0.0.1:1', peerURL: 'http://127.0.0.1:2' }] } as unknown as Inventory;
const id = { clusterId: null, peerURLs: ['http://127.0.0.1:2'] };

describe('FileStore as a run store', () => {
  it("a run's lock is the machine-wide lock: held until released before the last record, refused to another run", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-filestore-run-'));
    try {
      const store = new FileStore(dir);
      const runId = newRunId('minimal');
      const lock = await store.lockRun(id, runId, { label: 'c1' });
      expect(lockHolder(id)?.runId).toBe(runId);
      await expect(store.lockRun(id, newRunId('other'), { label: 'c1' })).rejects.toThrow(/cluster "c1" is locked by run/);
      lock.releaseMachineWide();
      expect(lockHolder(id)).toBeUndefined();
      await lock.release(); // once more at the end: nothing left to let go of
      expect(lockHolder(id)).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the machine snapshot beside the journal and reads it back; says where the journal is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-filestore-run-'));
    try {
      const store = new FileStore(dir);
      const runId = newRunId('minimal');
      await store.createRun({ runId, runbook: 'minimal', runbookFile: 'x.yaml', hash: 'h', params: {}, inventory: inv, createdAt: new Date().toISOString() }, 'text');
      expect(await store.loadSnapshot(runId)).toBeUndefined();
      const journal = await store.openJournal(runId, undefined);
      expect(journal.dir).toBe(runDir(dir, runId));
      expect(journal.location).toBe(runDir(dir, runId));
      journal.saveSnapshot('{"hash":"h","snapshot":{"status":"active"}}');
      journal.close();
      expect(fs.existsSync(files.snapshot(runDir(dir, runId)))).toBe(true);
      expect(await store.loadSnapshot(runId)).toBe('{"hash":"h","snapshot":{"status":"active"}}');
      expect(store.runbookCopyName(runId)).toBe(files.runbookCopy(runDir(dir, runId)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
