/**
 * A host is where a member's files and processes live: this machine, or another one reached over ssh. Actions
 * that touch a member's data dir or run etcd tools next to it go through a Host, so the same code serves both.
 * Every command is an argv array; remote ones are quoted per argument by src/exec/ssh.ts, never joined from
 * parameters into a shell string.
 */

export interface HostRunOptions {
  /** Extra environment variables for the command (on a remote host, passed through `env NAME=value`). */
  env?: Record<string, string>;
  /** Local only: drop inherited variables with this prefix (e.g. ETCDCTL_, so they cannot clash with flags). */
  dropEnvPrefix?: string;
  /** Stdin from a file on this machine (streamed: constant memory whatever its size). */
  inputFile?: string;
  /** Stdin as text. */
  input?: string;
  signal?: AbortSignal;
  /** Kill the command after this long (default 10 min). */
  timeoutMs?: number;
}

export interface HostRunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface HostStat {
  type: 'file' | 'dir' | 'other';
  size: number;
  mtimeMs: number;
}

export interface Host {
  /** For messages: "this machine" or "ssh root@10.0.0.5:22". */
  readonly label: string;
  readonly remote: boolean;
  /**
   * Run an argv on the host. Resolves with the exit code whatever it is; throws a StepError when the command
   * cannot be run at all (not found, ssh cannot connect), is cancelled or times out.
   */
  run(argv: string[], opts?: HostRunOptions): Promise<HostRunResult>;
  /** undefined when nothing is at the path. */
  stat(path: string): Promise<HostStat | undefined>;
  /** `mkdir -p`. */
  mkdir(path: string): Promise<void>;
  /** Rename within the host's file system; refuses when `to` exists (never overwrites). */
  rename(from: string, to: string): Promise<void>;
  /** sha256 of a file's whole content, lower-case hex. */
  sha256(path: string): Promise<string>;
  /** Read a small text file (at most maxBytes); undefined when it does not exist. */
  readText(path: string, maxBytes?: number): Promise<string | undefined>;
  /** Write a small text file atomically (temp file, fsync, rename over the target). It keeps the mode of the file it replaces (a new file: 0644). */
  writeTextAtomic(path: string, text: string): Promise<void>;
  /**
   * A backup on the same host: copy a file, its mode kept, to the first free `<base><ext>`, `<base>-2<ext>`…
   * (the directory created, 0700, when missing); never overwrites. Returns the path taken.
   */
  copyToFreshName(from: string, base: string, ext?: string): Promise<string>;
  /** Copy a file from this machine to `to` on the host (streamed); refuses when `to` exists. */
  putFile(localPath: string, to: string, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Names in a directory (empty when it does not exist). */
  list(dir: string): Promise<string[]>;
  /** Flush a file or directory to disk (best effort). */
  fsync(path: string): Promise<void>;
}
