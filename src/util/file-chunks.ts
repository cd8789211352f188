/** Read a whole file through one reused 1 MiB buffer: constant memory and no garbage per chunk, whatever its size. */
import { open } from 'node:fs/promises';
import { StepError } from './errors.ts';

export async function forEachChunk(path: string, signal: AbortSignal | undefined, onChunk: (chunk: Buffer) => void): Promise<void> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const fh = await open(path, 'r');
  try {
    for (;;) {
      if (signal?.aborted) throw new StepError('cancelled', `reading ${path}: cancelled`);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      onChunk(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}
