/**
 * Who is calling: Slack's v0 request signatures (with a replay cache), Mattermost's command token, Alertmanager's
 * bearer token, and the HMAC that makes Mattermost button callbacks unforgeable. Every comparison of a secret
 * against a request value is constant-time; nothing here parses the body before it is authenticated.
 */
import crypto from 'node:crypto';

/** Slack's window for X-Slack-Request-Timestamp, either way. */
export const SIGNATURE_WINDOW_S = 5 * 60;

export type VerifyFailure = 'missing-signature' | 'bad-signature' | 'stale' | 'future' | 'replay' | 'bad-token' | 'missing-token';

export type VerifyResult = { ok: true } | { ok: false; reason: VerifyFailure };

/** Constant-time string equality (length leaks nothing useful: both sides are hashed first). */
export function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a, 'utf8').digest();
  const hb = crypto.createHash('sha256').update(b, 'utf8').digest();
  return crypto.timingSafeEqual(ha, hb) && a.length === b.length;
}

export function slackSignature(secret: string, timestamp: string, rawBody: Buffer | string): string {
  const mac = crypto.createHmac('sha256', secret);
  mac.update(`v0:${timestamp}:`, 'utf8');
  mac.update(rawBody);
  return `v0=${mac.digest('hex')}`;
}

/**
 * Remembers accepted signatures for as long as they could pass the time check, so the same signed request is
 * taken once.
 * Bounded: entries expire with the window, and past `max` entries the oldest go first (a flood of valid
 * signatures would need the signing secret).
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;
  // A signature is accepted while its timestamp is within the window either way, so one stamped up to a window in
  // the future stays valid until two windows after it was first seen (and the check rounds to whole seconds):
  // remembered longer than that, it can never be replayed.
  constructor(ttlMs = (2 * SIGNATURE_WINDOW_S + 60) * 1000, max = 100_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** True when the key was new (and is now remembered). */
  add(key: string, now = Date.now()): boolean {
    this.#expire(now);
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, now + this.#ttlMs);
    while (this.#seen.size > this.#max) {
      const first = this.#seen.keys().next().value;
      if (first === undefined) break;
      this.#seen.delete(first);
    }
    return true;
  }

  #expire(now: number): void {
    for (const [k, exp] of this.#seen) {
      if (exp > now) break; // insertion order = expiry order
      this.#seen.delete(k);
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * Verify a Slack request: v0 HMAC-SHA256 of `v0:timestamp:rawbody`, timestamp within 5 minutes either way,
 * constant-time compare, then the replay check (only for requests whose signature is valid).
 */
export function verifySlack(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  replay: ReplayCache,
  nowMs = Date.now(),
): VerifyResult {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return { ok: false, reason: 'missing-signature' };
  if (!/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'bad-signature' };
  const expected = slackSignature(secret, timestamp, rawBody);
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(signature, 'utf8');
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return { ok: false, reason: 'bad-signature' };
  const skew = Math.floor(nowMs / 1000) - Number(timestamp);
  if (skew > SIGNATURE_WINDOW_S) return { ok: false, reason: 'stale' };
  if (skew < -SIGNATURE_WINDOW_S) return { ok: false, reason: 'future' };
  if (!replay.add(signature, nowMs)) return { ok: false, reason: 'replay' };
  return { ok: true };
}

/** `Authorization: Bearer <token>`, compared in constant time. */
export function verifyBearer(expected: string, authorization: string | undefined): VerifyResult {
  if (!authorization) return { ok: false, reason: 'missing-token' };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!m) return { ok: false, reason: 'bad-token' };
  return safeEqual(m[1]!, expected) ? { ok: true } : { ok: false, reason: 'bad-token' };
}

/** Mattermost's slash command `token` form field, compared in constant time. */
export function verifyToken(expected: string, given: string | undefined): VerifyResult {
  if (!given) return { ok: false, reason: 'missing-token' };
  return safeEqual(given, expected) ? { ok: true } : { ok: false, reason: 'bad-token' };
}

/** MAC for a Mattermost button's context: the buttons carry it, Mattermost sends it back on a click. */
export function actionMac(key: string, fields: readonly string[]): string {
  return crypto.createHmac('sha256', `runbook-mattermost-action:${key}`).update(fields.join('\n')).digest('hex');
}

export function verifyActionMac(key: string, fields: readonly string[], mac: unknown): boolean {
  if (typeof mac !== 'string' || !/^[0-9a-f]{64}$/.test(mac)) return false;
  return crypto.timingSafeEqual(Buffer.from(actionMac(key, fields), 'hex'), Buffer.from(mac, 'hex'));
}
