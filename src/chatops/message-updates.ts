/**
 * One chat message per run, edited as the run goes, at most once per interval (Slack allows chat.update about
 * once a second): changes in between are folded into the next edit, and the last state is always sent at the end.
 * Each edit may first ask whether this server may still speak for the run (a replica that lost the run's lock may
 * not); a "yes" is good for `validMs` only, and the edit carries that deadline to the chat sink.
 */
import { StaleEdit } from './chat.ts';

export type EditVerdict = 'yes' | 'no' | 'unknown';

export interface ThrottledMessageOptions {
  intervalMs: number;
  /** Resolves once the message exists (its first post settled); false when there is no message to edit. */
  ready: () => Promise<boolean>;
  /** Send the current state. `validUntil`: past it, the sink sends nothing (StaleEdit). */
  send: (validUntil: number | undefined) => Promise<void>;
  /** May this server edit now? Absent: always. 'unknown': ask again after an interval. */
  mayEdit?: () => Promise<EditVerdict>;
  /** How long a "yes" of mayEdit holds. */
  validMs: number;
  /** No more intermediate edits (the run ended, or is not ours any more): only `flush(true)` sends. */
  quiet: () => boolean;
  onSent: () => void;
  onError: (err: unknown) => void;
}

export class ThrottledMessage {
  readonly #o: ThrottledMessageOptions;
  #timer: NodeJS.Timeout | undefined;
  #updating: Promise<void> | undefined;
  #dirty = false;

  constructor(opts: ThrottledMessageOptions) {
    this.#o = opts;
  }

  /** Something changed: edit within the interval. */
  schedule(): void {
    this.#dirty = true;
    if (this.#timer || this.#updating || this.#o.quiet()) return;
    this.#arm();
  }

  /** Stop any edit that is waiting for its turn. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush(false);
    }, this.#o.intervalMs);
    this.#timer.unref?.();
  }

  /** Edit the message to the current state. `final`: wait for edits in flight and send the last state. */
  async flush(final: boolean): Promise<void> {
    if (final) this.cancel();
    const exists = await this.#o.ready();
    if (final) await this.#updating;
    if (this.#updating) return; // the edit in flight reschedules when it ends
    if (!exists || (!this.#dirty && !final)) return;
    const asked = Date.now();
    if (!final && this.#o.mayEdit) {
      const verdict = await this.#o.mayEdit();
      if (verdict === 'unknown' && !this.#timer) this.#arm();
      if (verdict !== 'yes') return;
    }
    if (this.#updating) return;
    this.#dirty = false;
    const validUntil = !final && this.#o.mayEdit ? asked + this.#o.validMs : undefined;
    this.#updating = this.#o.send(validUntil).then(() => this.#o.onSent(), (err: unknown) => {
      if (err instanceof StaleEdit) this.#dirty = true; // asked again at the next edit
      else this.#o.onError(err);
    }).finally(() => {
      this.#updating = undefined;
      if (this.#dirty && !final) this.schedule();
    });
    await this.#updating;
    if (final && this.#dirty) await this.flush(true);
  }
}
