/** approve: a pause only a human approval ends (the engine asks; the step itself has nothing to do). */
import { implement, type ImplementedAction } from './define.ts';

export const approve: ImplementedAction = implement('approve', {
  async run() {
    return { approved: true };
  },
});
