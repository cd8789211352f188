/**
 * The `[y/N]` question on a TTY when a run reaches an approval. One question at a time, opened only while a step
 * waits: a readline interface puts the terminal in raw mode, where Ctrl-C is a keystroke rather than a signal, so
 * keeping one open for the whole run would swallow the operator's interrupt. While a question is open, Ctrl-C
 * (and Ctrl-D) interrupt the run, as they do anywhere else: the run stays resumable (exit 130).
 */
import readline from 'node:readline';

export interface ApprovalPrompt {
  /** Ask about this step (again, after a resume). A question already open for it is kept. */
  ask(stepId: string, message?: string): void;
  /** The step was decided elsewhere (another terminal, chat, expiry): take the question down. */
  dismiss(stepId: string, why: string): void;
  close(): void;
}

export interface PromptIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** The operator answered: true for y/yes; anything else (including an empty line) is no. */
  onAnswer(stepId: string, yes: boolean): void;
  /** Ctrl-C or end of input at the question. */
  onInterrupt(): void;
}

export function approvalPrompt(io: PromptIo): ApprovalPrompt {
  let open: { stepId: string; rl: readline.Interface; settled: boolean } | undefined;

  const takeDown = (note?: string) => {
    const q = open;
    if (!q) return;
    q.settled = true;
    open = undefined;
    q.rl.close();
    io.output.write(note ? `\n${note}\n` : '\n');
  };

  return {
    ask(stepId, message) {
      if (open?.stepId === stepId) return;
      takeDown();
      const rl = readline.createInterface({ input: io.input, output: io.output, terminal: true });
      const q = { stepId, rl, settled: false };
      open = q;
      rl.on('SIGINT', () => {
        takeDown();
        io.onInterrupt();
      });
      rl.on('close', () => {
        if (q.settled) return;
        // End of input (Ctrl-D) without an answer: not a decision; stop, resumable.
        q.settled = true;
        if (open === q) open = undefined;
        io.output.write('\n');
        io.onInterrupt();
      });
      rl.question(`Approve step "${stepId}"${message ? ` (${message})` : ''}? [y/N] `, (answer) => {
        if (q.settled) return;
        q.settled = true;
        open = undefined;
        rl.close();
        io.onAnswer(stepId, /^y(es)?$/i.test(answer.trim()));
      });
    },
    dismiss(stepId, why) {
      if (open?.stepId === stepId) takeDown(why);
    },
    close() {
      takeDown();
    },
  };
}
