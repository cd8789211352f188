/** Ask for a secret on the terminal without echoing it (etcdctl's "Password:" for `--user NAME`). */
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { ExitCode, UserError } from '../common.ts';

export function readSecret(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    // Everything readline echoes after the question is swallowed: the typed secret never reaches the screen.
    const output = new Writable({
      write(chunk, _enc, done) {
        if (!muted) process.stderr.write(chunk);
        done();
      },
    });
    const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
    let answered = false;
    rl.on('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new UserError('interrupted at the password prompt', { exitCode: ExitCode.interrupted }));
    });
    rl.on('close', () => {
      if (!answered) reject(new UserError('no password given (end of input at the prompt)'));
    });
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}
