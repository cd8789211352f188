/**
 * The Maintenance/Snapshot RPC read straight off HTTP/2, written to a file through one reused buffer.
 *
 * Why not the etcd3 client: its stream goes through grpc-js and protobufjs, which allocate several objects and
 * buffers per 32 KiB chunk; V8 collects them late, and on a runner whose baseline is ~130 MiB that churn alone
 * pushed a 200 MB save past 150 MiB RSS. Here each HTTP/2 DATA chunk is copied into a reused message buffer, the
 * `blob` field (SnapshotResponse field 3) into a reused 1 MiB write buffer, and the file gets 1 MiB writes: memory
 * stays flat whatever the snapshot size. (The client's stream also never sends an auth token: clusters with auth
 * are saved with etcdctl, see save.ts.)
 *
 * Wire format (gRPC over HTTP/2): request = POST /etcdserverpb.Maintenance/Snapshot with one length-prefixed empty
 * message; response = length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length, protobuf), then
 * trailers with grpc-status / grpc-message.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { FileHandle } from 'node:fs/promises';
import type { TlsSpec } from '../inventory/types.ts';
import { tlsFileOptions } from '../etcd/tls-files.ts';
import { StepError, UserError, messageOf } from '../util/errors.ts';
import { garbageBound } from './gc.ts';

const PATH = '/etcdserverpb.Maintenance/Snapshot';
const WRITE_BUFFER = 1024 * 1024;
/** etcd sends 32 KiB blobs; anything far bigger is not a snapshot response. */
const MAX_MESSAGE = 64 * 1024 * 1024;
/**
 * HTTP/2 flow-control window, for the stream and the connection. Node's default (64 KiB) lets etcd send two
 * chunks per WINDOW_UPDATE round trip: a 512 MiB save over TLS took 4.7 s against etcdctl's 3.0 s. With 1 MiB it
 * takes what etcdctl takes (2, 4, 8 and 32 MiB measured no faster), and peak RSS stays where it was with 64 KiB
 * (8 MiB of unread data in flight raised it by ~35 MiB).
 */
const STREAM_WINDOW = 1024 * 1024;

export interface SnapshotStreamOptions {
  endpoint: string;
  tls?: TlsSpec;
  /** No data for this long: give up. */
  idleMs: number;
  signal?: AbortSignal;
  /**
   * Called once, when the first message has arrived: the member has opened the read transaction the snapshot is
   * taken from, so its point in time is fixed from here on, however long the rest of the stream takes.
   */
  onFirstMessage?: (revision: number | undefined) => void;
  /**
   * Once the first message has arrived, read nothing more until this settles: HTTP/2 flow control then stops the
   * member's sending (its read transaction stays open, so the content does not change) and this machine's disk and
   * CPU go to other work first. The idle limit does not run while held.
   */
  hold?: Promise<void>;
}

export interface SnapshotStreamResult {
  bytes: number;
  /** Store revision in the first response header (the point in time of the snapshot). */
  revision?: number;
}

function readVarint(buf: Buffer, at: number, end: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  for (let i = at; i < end && shift < 64; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    shift += 7;
  }
  throw new Error('malformed protobuf varint');
}

/** ResponseHeader.revision (field 3) from the header bytes. */
function headerRevision(buf: Buffer, at: number, end: number): number | undefined {
  while (at < end) {
    const tag = readVarint(buf, at, end);
    at = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    if (wire === 0) {
      const v = readVarint(buf, at, end);
      if (field === 3) return v.value;
      at = v.next;
    } else if (wire === 2) {
      const len = readVarint(buf, at, end);
      at = len.next + len.value;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Fields of one SnapshotResponse message: where the blob is, and the header's revision. */
function parseMessage(buf: Buffer, end: number): { blobStart: number; blobEnd: number; revision?: number } {
  let at = 0;
  let blobStart = 0;
  let blobEnd = 0;
  let revision: number | undefined;
  while (at < end) {
    const tag = readVarint(buf, at, end);
    at = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    if (wire === 0) {
      at = readVarint(buf, at, end).next;
    } else if (wire === 2) {
      const len = readVarint(buf, at, end);
      const start = len.next;
      const stop = start + len.value;
      if (stop > end) throw new Error('truncated protobuf field');
      if (field === 3) {
        blobStart = start;
        blobEnd = stop;
      } else if (field === 1) {
        revision = headerRevision(buf, start, stop);
      }
      at = stop;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new Error(`unexpected protobuf wire type ${wire}`);
    }
  }
  return revision === undefined ? { blobStart, blobEnd } : { blobStart, blobEnd, revision };
}

/** Stream the member's snapshot into `fh` (at its current position). */
export async function streamSnapshot(fh: FileHandle, o: SnapshotStreamOptions): Promise<SnapshotStreamResult> {
  const who = o.endpoint;
  let session: ClientHttp2Session | undefined;
  let idle: NodeJS.Timeout | undefined;
  let why: StepError | undefined;
  let stopped: () => void = () => {};
  const stopping = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  const stop = (err: StepError) => {
    why ??= err;
    stopped();
    session?.destroy();
  };
  const onAbort = () => stop(new StepError('cancelled', 'snapshot save cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => stop(new StepError('transient', `${who}: the snapshot stream sent nothing for ${Math.round(o.idleMs / 1000)}s`)), o.idleMs);
  };
  const garbage = garbageBound(1024 * 1024);
  const out = Buffer.allocUnsafe(WRITE_BUFFER);
  let outLen = 0;
  let written = 0;
  const flush = async () => {
    if (outLen === 0) return;
    let off = 0;
    while (off < outLen) off += (await fh.write(out, off, outLen - off)).bytesWritten;
    written += outLen;
    outLen = 0;
  };

  let msg = Buffer.allocUnsafe(64 * 1024);
  const prefix = Buffer.alloc(5);
  let prefixLen = 0;
  let msgLen = -1; // -1: reading the prefix
  let msgHave = 0;
  let revision: number | undefined;
  let announced = false;
  let status: number | undefined;
  let grpcMessage = '';

  try {
    arm();
    session = connect(o.endpoint, { ...tlsFileOptions(o.endpoint, o.tls), maxSessionMemory: 16, settings: { initialWindowSize: STREAM_WINDOW } });
    session.on('connect', (s: ClientHttp2Session) => s.setLocalWindowSize(STREAM_WINDOW));
    session.on('error', (err) => stop(new StepError('transient', `${who}: snapshot stream: ${messageOf(err)}`)));
    const req = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: PATH,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [constants.HTTP2_HEADER_TE]: 'trailers',
    });
    req.on('response', (headers) => {
      const s = Number(headers[constants.HTTP2_HEADER_STATUS]);
      if (s !== 200) stop(new StepError('transient', `${who}: snapshot stream: HTTP status ${s}`));
      if (headers['grpc-status'] !== undefined) {
        status = Number(headers['grpc-status']);
        grpcMessage = decodeURIComponent(String(headers['grpc-message'] ?? ''));
      }
    });
    req.on('trailers', (headers) => {
      status = Number(headers['grpc-status'] ?? 0);
      grpcMessage = decodeURIComponent(String(headers['grpc-message'] ?? ''));
    });
    req.end(Buffer.from([0, 0, 0, 0, 0]));

    for await (const chunk of req as AsyncIterable<Buffer>) {
      arm();
      let at = 0;
      while (at < chunk.length) {
        if (msgLen < 0) {
          const take = Math.min(5 - prefixLen, chunk.length - at);
          chunk.copy(prefix, prefixLen, at, at + take);
          prefixLen += take;
          at += take;
          if (prefixLen < 5) break;
          if (prefix[0] !== 0) throw new StepError('failed', `${who}: the snapshot stream is compressed; not supported`);
          msgLen = prefix.readUInt32BE(1);
          if (msgLen > MAX_MESSAGE) throw new StepError('failed', `${who}: snapshot stream message of ${msgLen} bytes: not a snapshot response`);
          if (msg.length < msgLen) msg = Buffer.allocUnsafe(msgLen);
          msgHave = 0;
          prefixLen = 0;
        }
        const take = Math.min(msgLen - msgHave, chunk.length - at);
        chunk.copy(msg, msgHave, at, at + take);
        msgHave += take;
        at += take;
        if (msgHave < msgLen) break;
        const fields = parseMessage(msg, msgLen);
        if (revision === undefined && fields.revision !== undefined) revision = fields.revision;
        if (!announced) {
          announced = true;
          o.onFirstMessage?.(revision);
          if (o.hold) {
            clearTimeout(idle);
            await Promise.race([o.hold, stopping]);
            if (why) break;
            arm();
          }
        }
        let from = fields.blobStart;
        while (from < fields.blobEnd) {
          const n = Math.min(fields.blobEnd - from, WRITE_BUFFER - outLen);
          msg.copy(out, outLen, from, from + n);
          outLen += n;
          from += n;
          if (outLen === WRITE_BUFFER) await flush();
        }
        msgLen = -1;
      }
      garbage.progress(chunk.length);
    }
    await flush();
    if (why) throw why;
    if (msgLen >= 0 || prefixLen > 0) throw new StepError('transient', `${who}: the snapshot stream ended in the middle of a message`);
    if (status === undefined) throw new StepError('transient', `${who}: the snapshot stream ended without a gRPC status`);
    if (status !== 0) {
      throw new StepError('transient', `${who}: snapshot: ${grpcMessage || `gRPC status ${status}`}`, {
        ...(/user name is empty|permission denied|invalid auth token/i.test(grpcMessage) ? { hint: 'the cluster has auth: set auth in the inventory (etcdctl then takes the snapshot)' } : {}),
      });
    }
    return revision === undefined ? { bytes: written } : { bytes: written, revision };
  } catch (err) {
    if (why) throw why;
    if (err instanceof StepError || err instanceof UserError) throw err;
    throw new StepError('transient', `${who}: the snapshot stream failed: ${messageOf(err)}`);
  } finally {
    clearTimeout(idle);
    o.signal?.removeEventListener('abort', onAbort);
    session?.close();
    session?.destroy();
    garbage.finish();
  }
}
