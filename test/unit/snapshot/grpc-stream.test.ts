import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamSnapshot } from '../../../src/snapshot/grpc-stream.ts';
import { StepError } from '../../../src/util/errors.ts';

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
const field = (no: number, bytes: Buffer) => Buffer.concat([varint(no * 8 + 2), varint(bytes.length), bytes]);
/** SnapshotResponse { header { revision }, remaining_bytes, blob }, length-prefixed like gRPC frames it. */
function message(blob: Buffer, remaining: number, revision?: number): Buffer {
  const header = revision === undefined ? Buffer.alloc(0) : field(1, Buffer.concat([varint(3 * 8), varint(revision)]));
  const body = Buffer.concat([header, varint(2 * 8), varint(remaining), field(3, blob)]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/**
 * The stand-in: a plain HTTP/2 server in place of etcd's gRPC Maintenance/Snapshot endpoint. It models only what
 * streamSnapshot reads: the request path, gRPC's 5-byte length-prefixed messages carrying SnapshotResponse protobufs
 * (header.revision, remaining_bytes, blob), and the grpc-status/grpc-message trailers. It does not model flow control
 * beyond HTTP/2's own, TLS, auth, or what etcd puts in the snapshot (the tests with a real etcd cover those:
 * test/integration/snapshot-backup.test.ts, snapshot-restore.test.ts). Each behaviour below is a way a real stream
 * ends: cleanly, cut, stalled, with an error status.
 */
type Behaviour = (stream: ServerHttp2Stream) => void;
let behaviour: Behaviour = () => {};
let server: Http2Server;
let endpoint = '';
/** The request path of every stream the stand-in received. */
const paths: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'runbook-grpcstream-'));

beforeAll(async () => {
  server = createServer();
  server.on('stream', (stream, headers) => {
    // Asserted where the test awaits (see save): an expect thrown in this callback would be lost.
    paths.push(String(headers[':path']));
    behaviour(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function save(name: string) {
  const fh = await open(join(dir, name), 'wx');
  const seen = paths.length;
  try {
    return await streamSnapshot(fh, { endpoint, idleMs: 5_000 });
  } finally {
    await fh.close();
    // Every call reached the stand-in as etcd's Snapshot RPC, once.
    expect(paths.slice(seen)).toEqual(['/etcdserverpb.Maintenance/Snapshot']);
  }
}

describe('streamSnapshot (gRPC over HTTP/2, read directly)', () => {
  it('writes exactly the blobs, whatever the DATA frame boundaries, and reports the header revision', async () => {
    const blobs = Array.from({ length: 40 }, (_, i) => randomBytes(i === 39 ? 1234 : 32 * 1024));
    const wire = Buffer.concat(blobs.map((b, i) => message(b, 0, i === 0 ? 4242 : undefined)));
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      // Odd cuts: inside prefixes, inside varints, inside blobs.
      let at = 0;
      for (const n of [1, 3, 2, 7, 5000, 17, 40_000, 65_535]) {
        if (at >= wire.length) break;
        stream.write(wire.subarray(at, at + n));
        at += n;
      }
      stream.end(wire.subarray(at));
    };
    const r = await save('ok.db');
    expect(r).toEqual({ bytes: Buffer.concat(blobs).length, revision: 4242 });
    expect(readFileSync(join(dir, 'ok.db')).equals(Buffer.concat(blobs))).toBe(true);
  });

  it('a gRPC error status becomes a StepError with its message (and an auth hint)', async () => {
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '3', 'grpc-message': 'etcdserver:%20user%20name%20is%20empty' }));
      stream.end();
    };
    const err = await save('auth.db').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).message).toMatch(/user name is empty/);
    expect((err as StepError).hint).toMatch(/auth/);
  });

  it('a stream cut in the middle of a message is an error, not a short file passed off as whole', async () => {
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(message(randomBytes(1000), 0).subarray(0, 600));
    };
    const err = await save('cut.db').catch((e: unknown) => e);
    expect((err as StepError).message).toMatch(/ended in the middle of a message/);
  });
});
