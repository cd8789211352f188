/** Where CLI output goes, so tests can capture it and commands stay free of process globals. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
  color: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIo(): Io {
  const isTTY = Boolean(process.stdout.isTTY);
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    isTTY,
    color: isTTY && !process.env.NO_COLOR,
    env: process.env,
    cwd: process.cwd(),
  };
}

export function json(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
