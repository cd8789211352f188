/**
 * How a command's action sets the process exit code without throwing: recorded on the command, read by main()
 * once the action returns. Its own module so that command files do not import main.ts (which imports them).
 */
import type { Command } from 'commander';

type WithExit = Command & { exitCodeValue?: number };

/** Let an action set the process exit code without throwing. */
export function setExit(cmd: Command, code: number): void {
  (cmd as WithExit).exitCodeValue = code;
}

/** The exit code an action set, if any. */
export function exitOf(cmd: Command): number | undefined {
  return (cmd as WithExit).exitCodeValue;
}
