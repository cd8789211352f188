/**
 * A command in a real pseudo-terminal, for tests of what a person at a terminal sees and types (prompts, Ctrl-C).
 * util-linux `script` (Debian's essential bsdutils, so on every machine) allocates the pty, makes it the child's
 * controlling terminal, copies our writes into it as keystrokes and its screen out to our stdout, and exits with
 * the child's code (-e). A Ctrl-C written as "\x03" is what a keyboard sends: the terminal turns it into SIGINT
 * unless the program put the terminal in raw mode (as readline does), where the program reads it as a byte.
 */
import { execa, type ResultPromise } from 'execa';

export interface PtyProcess {
  /** Everything the terminal showed so far (stdout and stderr of the child are one screen in a terminal). */
  screen(): string;
  /** Wait until the screen matches (polls the accumulated output; no fixed sleeps). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Type into the terminal. */
  type(keys: string): void;
  /** The exit of the child (the exit code is the child's). */
  done: ResultPromise;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function inPty(argv: string[], env: Record<string, string> = {}, timeoutMs = 60_000): PtyProcess {
  const command = argv.map(quote).join(' ');
  const done = execa('script', ['-qfec', command, '/dev/null'], {
    reject: false,
    env: { SHELL: '/bin/sh', TERM: 'xterm', ...env },
    stdin: 'pipe',
    timeout: timeoutMs,
  });
  let buf = '';
  let exited: number | undefined;
  void done.then((r) => {
    exited = r.exitCode ?? -1;
  });
  done.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
  });
  return {
    screen: () => buf,
    waitFor(re, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          if (re.test(buf)) return resolve(buf);
          if (exited !== undefined) return reject(new Error(`exited (${exited}) before ${re}; screen:\n${buf}`));
          if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${re}; screen:\n${buf}`));
          setTimeout(tick, 50);
        };
        tick();
      });
    },
    type(keys) {
      done.stdin!.write(keys);
    },
    done,
  };
}
