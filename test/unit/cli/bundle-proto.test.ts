// The bundle hands etcd3 its protos pre-parsed (bin/bundle.js): the package definition gRPC gets must be the one
// etcd3's own loadSync of the .proto text makes — same services, methods, message types, and bytes on the wire.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JS module without types
import { ETCD3_LOAD_CALL, etcd3ProtoJSON } from '../../../bin/bundle.js';

const root = resolve(import.meta.dirname, '../../..');
const require = createRequire(join(root, 'node_modules', 'etcd3', 'package.json'));
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const OPTS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type Def = Record<string, Record<string, unknown>>;
/** What of a package definition gRPC uses, without functions: method paths and stream flags, message descriptors. */
function shape(def: Def): unknown {
  return Object.fromEntries(
    Object.entries(def).map(([name, d]) => {
      if ('format' in d) return [name, { format: d.format, type: d.type, files: (d.fileDescriptorProtos as Buffer[]).map((b) => b.toString('base64')) }];
      return [name, Object.fromEntries(Object.entries(d).map(([m, md]) => {
        const { path, requestStream, responseStream, originalName, requestType, responseType } = md as Record<string, { type?: unknown } & unknown>;
        return [m, { path, requestStream, responseStream, originalName, request: (requestType as { type: unknown }).type, response: (responseType as { type: unknown }).type }];
      }))];
    }),
  );
}

describe('etcd3 protos pre-parsed for the bundle', () => {
  const fromText = protoLoader.loadSync(join(root, 'node_modules/etcd3/proto/rpc.proto'), OPTS) as unknown as Def;
  const fromJson = protoLoader.fromJSON(etcd3ProtoJSON(root), OPTS) as unknown as Def;

  it('gives gRPC the same services, methods and message types as parsing the .proto files', () => {
    expect(Object.keys(fromJson).sort()).toEqual(Object.keys(fromText).sort());
    expect(Object.keys(fromText)).toContain('etcdserverpb.Maintenance');
    expect(shape(fromJson)).toEqual(shape(fromText));
  });

  it('encodes and decodes requests and responses to the same bytes', () => {
    const put = { key: Buffer.from('k'), value: Buffer.from('v'), lease: '7', prev_kv: true };
    const a = fromText['etcdserverpb.KV']!.Put as { requestSerialize(x: unknown): Buffer; responseDeserialize(b: Buffer): unknown };
    const b = fromJson['etcdserverpb.KV']!.Put as typeof a;
    expect(b.requestSerialize(put).equals(a.requestSerialize(put))).toBe(true);
    const status = fromText['etcdserverpb.Maintenance']!.Status as typeof a;
    const statusJson = fromJson['etcdserverpb.Maintenance']!.Status as typeof a;
    const bytes = Buffer.from('0a0a08011002180320042801120a332e342e323300', 'hex');
    expect(statusJson.responseDeserialize(bytes)).toEqual(status.responseDeserialize(bytes));
  });

  it('finds the call it replaces in the installed etcd3 (else the bundle would silently parse the text again)', () => {
    expect(readFileSync(join(root, 'node_modules/etcd3/lib/connection-pool.js'), 'utf8')).toContain(ETCD3_LOAD_CALL);
  });
});
