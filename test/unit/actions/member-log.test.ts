/** Which member log lines mean damaged data (a restart cannot help), on real etcd 3.4/3.5 log shapes. */
import { describe, expect, it } from 'vitest';
import { dataErrorIn } from '../../../src/actions/member-log.ts';

describe('dataErrorIn', () => {
  it('names a db whose meta pages are gone (etcd 3.4 and 3.5 zap panic line)', () => {
    const line = '{"level":"panic","ts":"2026-12-07T18:47:27.735496Z","caller":"backend/backend.go:211","msg":"failed to open database","path":"/d/member/snap/db","error":"invalid database","stacktrace":"go.etcd.io/..."}';
    expect(dataErrorIn(`${line}\npanic: failed to open database`)).toBe('failed to open database: invalid database');
  });

  it('names a WAL CRC mismatch and a SIGBUS on a db cut short', () => {
    expect(dataErrorIn('{"level":"fatal","msg":"failed to read WAL","error":"wal: crc mismatch"}')).toMatch(/crc mismatch/);
    expect(dataErrorIn('unexpected fault address 0x7f0000000000\nfatal error: fault\n[signal SIGBUS: bus error code=0x2 addr=0x7f0000000000 pc=0x1]')).toBe('unexpected fault address');
  });

  it('does not call a port in use or a bad flag damaged data', () => {
    expect(dataErrorIn('{"level":"fatal","msg":"discovery failed","error":"listen tcp 127.0.0.1:2380: bind: address already in use"}')).toBeUndefined();
    expect(dataErrorIn('invalid value "abc" for flag -quota-backend-bytes: parse error')).toBeUndefined();
  });
});
