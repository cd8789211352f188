/**
 * The integrity of an etcd snapshot file, from its bytes alone. etcd appends the sha256 of the database to the
 * snapshot stream: the last 32 bytes are the sha256 of everything before them. `etcdctl snapshot status` does
 * NOT check this on 3.4 (a file with its tail cut or a byte flipped passes; ETCD-NOTES), so this is the check.
 * One streaming pass also yields the sha256 of the whole file (what `sha256sum` prints, kept in manifests).
 */
import { forEachChunk } from '../util/file-chunks.ts';
import { createHash } from 'node:crypto';

export const TRAILER_BYTES = 32;

export interface SnapshotFileCheck {
  size: number;
  /** sha256 of the whole file (lower-case hex), as `sha256sum` prints it. */
  sha256: string;
  /** The last 32 bytes are the sha256 of the rest. */
  trailerOk: boolean;
  /** Why the file is not a good snapshot (undefined when trailerOk). */
  problem?: string;
}

/**
 * Hashes fed with a stream, holding the last 32 bytes back: one sha256 of the body (everything before the last 32
 * bytes), and the whole file's sha256 from a copy of that state with those 32 bytes added. One pass of hashing,
 * not two: the CPU cost of checking a multi-GB snapshot is halved.
 */
export class TrailerHasher {
  readonly #body = createHash('sha256');
  #tail: Buffer = Buffer.alloc(0);
  size = 0;

  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (chunk.length >= TRAILER_BYTES) {
      this.#body.update(this.#tail);
      this.#body.update(chunk.subarray(0, chunk.length - TRAILER_BYTES));
      this.#tail = Buffer.from(chunk.subarray(chunk.length - TRAILER_BYTES));
    } else {
      const joined = Buffer.concat([this.#tail, chunk]);
      const cut = Math.max(0, joined.length - TRAILER_BYTES);
      this.#body.update(joined.subarray(0, cut));
      this.#tail = Buffer.from(joined.subarray(cut));
    }
  }

  result(): SnapshotFileCheck {
    const sha256 = this.#body.copy().update(this.#tail).digest('hex');
    if (this.size <= TRAILER_BYTES) {
      return { size: this.size, sha256, trailerOk: false, problem: this.size === 0 ? 'the file is empty' : `the file is only ${this.size} bytes: not a snapshot` };
    }
    const trailerOk = this.#body.digest().equals(this.#tail);
    return trailerOk
      ? { size: this.size, sha256, trailerOk }
      : { size: this.size, sha256, trailerOk, problem: 'its sha256 trailer does not match its content: the file is truncated or damaged' };
  }
}

/**
 * Read the file once: size, sha256, and whether the sha256 trailer matches. One buffer is reused for the whole
 * file, so hashing a multi-GB snapshot allocates nothing per chunk (no garbage for the GC to lag behind on).
 */
export async function checkSnapshotFile(path: string, signal?: AbortSignal): Promise<SnapshotFileCheck> {
  const h = new TrailerHasher();
  await forEachChunk(path, signal, (chunk) => h.update(chunk));
  return h.result();
}
