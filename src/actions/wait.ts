/** wait: a fixed, bounded time; a resumed wait counts the time already waited. */
import { sleep } from '../execute/retry.ts';
import { formatDuration } from '../util/units.ts';
import { implement, type ImplementedAction } from './define.ts';

export const wait: ImplementedAction = implement('wait', {
  async plan(_ctx, input) {
    return `would wait ${formatDuration(input.duration)}`;
  },
  async run(ctx, input) {
    // A resumed wait counts the time already waited since the step first started.
    const remaining = Math.max(0, ctx.firstStartedAt + input.duration - Date.now());
    await sleep(remaining, ctx.signal);
    return { waitedMs: input.duration };
  },
});
