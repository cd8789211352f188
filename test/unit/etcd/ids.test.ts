import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hexIdToDecimal, isZeroId, looksLikeHexId, normalizeURL, sameURL, toHexId } from '../../../src/etcd/ids.ts';

describe('member ids', () => {
  it('prints wire (decimal) ids as etcdctl does: unpadded lowercase hex', () => {
    // Pairs seen on a real cluster: status header member_id vs `etcdctl endpoint status -w table`.
    expect(toHexId('17161531507652365892')).toBe('ee2a01fb034b0e44');
    expect(toHexId('4792986716472747293')).toBe('42841c063886251d');
    expect(toHexId('14937332902295204503')).toBe('cf4c11221d0f7297');
    expect(toHexId('18446744073709551615')).toBe('ffffffffffffffff');
    expect(toHexId('255')).toBe('ff');
    expect(toHexId('0')).toBe('0');
    expect(toHexId(10n)).toBe('a');
  });

  it('keeps all 64 bits (a Number would round them)', () => {
    expect(toHexId('17161531507652365893')).toBe('ee2a01fb034b0e45');
    expect(Number('17161531507652365893').toString(16)).not.toBe('ee2a01fb034b0e45');
  });

  it('reads hex the three ways etcdctl prints it back to decimal', () => {
    expect(hexIdToDecimal('ee2a01fb034b0e44')).toBe('17161531507652365892');
    expect(hexIdToDecimal('  42841c063886251d')).toBe('4792986716472747293'); // `member add` pads with spaces
    expect(hexIdToDecimal('0xFF')).toBe('255');
    expect(() => hexIdToDecimal('xyz')).toThrow(RangeError);
    expect(() => hexIdToDecimal('1ffffffffffffffff')).toThrow(RangeError);
    expect(() => toHexId('-1')).toThrow(RangeError);
  });

  it('round-trips every uint64', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
        expect(hexIdToDecimal(toHexId(n.toString()))).toBe(n.toString());
      }),
    );
  });

  it('tells hex ids from names and zero from a leader', () => {
    expect(looksLikeHexId('ee2a01fb034b0e44')).toBe(true);
    expect(looksLikeHexId('m1')).toBe(false);
    expect(looksLikeHexId('12')).toBe(false); // could be a name; only 16 digits or a hex letter count
    expect(isZeroId('0')).toBe(true);
    expect(isZeroId('42841c063886251d')).toBe(false);
  });
});

describe('URLs', () => {
  it('compares URLs by scheme, host and port', () => {
    expect(sameURL('http://127.0.0.1:2379/', 'http://127.0.0.1:2379')).toBe(true);
    expect(sameURL('https://Etcd-1.example:2379', 'https://etcd-1.example:2379')).toBe(true);
    expect(sameURL('http://127.0.0.1:2379', 'https://127.0.0.1:2379')).toBe(false);
    expect(sameURL('http://127.0.0.1:2379', 'http://127.0.0.1:2380')).toBe(false);
    expect(normalizeURL('https://h')).toBe('https://h:443');
  });
});
