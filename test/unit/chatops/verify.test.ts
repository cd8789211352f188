import { describe, expect, it } from 'vitest';
import { ReplayCache, actionMac, safeEqual, slackSignature, verifyActionMac, verifyBearer, verifySlack, verifyToken } from '../../../src/chatops/verify.ts';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const body = Buffer.from('token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Frunbook&text=list');

describe('verifySlack', () => {
  const now = 1_700_000_000_000;
  const ts = String(now / 1000);

  it('accepts a correct signature once, then refuses the replay', () => {
    const replay = new ReplayCache();
    const signature = slackSignature(SECRET, ts, body);
    expect(verifySlack(SECRET, { timestamp: ts, signature }, body, replay, now)).toEqual({ ok: true });
    expect(verifySlack(SECRET, { timestamp: ts, signature }, body, replay, now + 1000)).toEqual({ ok: false, reason: 'replay' });
  });

  it('a signature stamped a window in the future cannot be replayed while it still passes the time check', () => {
    const replay = new ReplayCache();
    const future = String(now / 1000 + 300);
    const signature = slackSignature(SECRET, future, body);
    expect(verifySlack(SECRET, { timestamp: future, signature }, body, replay, now)).toEqual({ ok: true });
    // Valid by its timestamp until now + 600 s (inclusive, whole seconds): every replay until then is refused.
    for (const later of [599_000, 600_000, 600_999]) {
      expect(verifySlack(SECRET, { timestamp: future, signature }, body, replay, now + later), `+${later} ms`).toEqual({ ok: false, reason: 'replay' });
    }
    expect(verifySlack(SECRET, { timestamp: future, signature }, body, replay, now + 601_000)).toEqual({ ok: false, reason: 'stale' });
  });

  it('matches Slack\'s documented example', () => {
    // https://api.slack.com/authentication/verifying-requests-from-slack (example secret, timestamp and body)
    const exampleBody = 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    expect(slackSignature('8f742231b10e8888abcd99yyyzzz85a5', '1531420618', exampleBody)).toBe('v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503');
  });

  it('refuses stale and future timestamps (5 minutes either way), bad and missing signatures', () => {
    const replay = new ReplayCache();
    const at = (offsetS: number) => String(now / 1000 + offsetS);
    const sign = (t: string) => slackSignature(SECRET, t, body);
    expect(verifySlack(SECRET, { timestamp: at(-301), signature: sign(at(-301)) }, body, replay, now)).toEqual({ ok: false, reason: 'stale' });
    expect(verifySlack(SECRET, { timestamp: at(301), signature: sign(at(301)) }, body, replay, now)).toEqual({ ok: false, reason: 'future' });
    expect(verifySlack(SECRET, { timestamp: at(-299), signature: sign(at(-299)) }, body, replay, now)).toEqual({ ok: true });
    expect(verifySlack(SECRET, { timestamp: ts, signature: slackSignature('other', ts, body) }, body, replay, now)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifySlack(SECRET, { timestamp: ts, signature: 'v1=abc' }, body, replay, now)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifySlack(SECRET, { timestamp: ts, signature: undefined }, body, replay, now)).toEqual({ ok: false, reason: 'missing-signature' });
    expect(verifySlack(SECRET, { timestamp: undefined, signature: sign(ts) }, body, replay, now)).toEqual({ ok: false, reason: 'missing-signature' });
    // the body is covered: one changed byte fails
    const changed = Buffer.from(body);
    changed[changed.length - 1] = 0x41;
    expect(verifySlack(SECRET, { timestamp: ts, signature: sign(ts) }, changed, replay, now)).toEqual({ ok: false, reason: 'bad-signature' });
    // a refused request does not poison the replay cache
    expect(replay.size).toBe(1);
  });

  it('replay cache entries expire and the cache is bounded', () => {
    const c = new ReplayCache(1000, 3);
    expect(c.add('a', 0)).toBe(true);
    expect(c.add('a', 500)).toBe(false);
    expect(c.add('a', 1500)).toBe(true);
    for (const k of ['b', 'c', 'd', 'e']) c.add(k, 1600);
    expect(c.size).toBe(3);
  });
});

describe('tokens', () => {
  it('bearer, Mattermost token and button MACs compare exactly', () => {
    expect(verifyBearer('s3cret-token', 'Bearer s3cret-token')).toEqual({ ok: true });
    expect(verifyBearer('s3cret-token', 'bearer s3cret-token')).toEqual({ ok: true });
    expect(verifyBearer('s3cret-token', 'Bearer s3cret-tokem')).toEqual({ ok: false, reason: 'bad-token' });
    expect(verifyBearer('s3cret-token', 'Basic czNjcmV0')).toEqual({ ok: false, reason: 'bad-token' });
    expect(verifyBearer('s3cret-token', undefined)).toEqual({ ok: false, reason: 'missing-token' });
    expect(verifyToken('abc', 'abc')).toEqual({ ok: true });
    expect(verifyToken('abc', 'abcd')).toEqual({ ok: false, reason: 'bad-token' });
    expect(safeEqual('', '')).toBe(true);
    const mac = actionMac('key', ['run', 'step', 'approve']);
    expect(verifyActionMac('key', ['run', 'step', 'approve'], mac)).toBe(true);
    expect(verifyActionMac('key', ['run', 'step', 'deny'], mac)).toBe(false);
    expect(verifyActionMac('other', ['run', 'step', 'approve'], mac)).toBe(false);
    expect(verifyActionMac('key', ['run', 'step', 'approve'], 'zz')).toBe(false);
  });
});
