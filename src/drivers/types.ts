/**
 * How a member's etcd process is stopped, started and reconfigured. Step actions get a driver with
 * `driverFor(member)` and never care whether the member is a local process, a systemd unit or a static pod.
 */
import type { MemberSpec } from '../inventory/types.ts';

export interface DriverStartOptions {
  signal?: AbortSignal;
}

export interface DriverStopOptions {
  /** Grace period after SIGTERM before SIGKILL (default 15 s). */
  timeoutMs?: number;
  /** SIGKILL straight away. */
  force?: boolean;
}

export interface MemberDriver {
  /** Start the member (idempotent: a running member is left alone). Returns once the process is launched, not healthy. */
  start(opts?: DriverStartOptions): Promise<void>;
  /** Stop the member (idempotent: a stopped member is fine) and wait until its process is gone. */
  stop(opts?: DriverStopOptions): Promise<void>;
  status(): Promise<{ running: boolean; pid?: number }>;
  /**
   * The command line in effect: the running process's argv when it runs, else what the next start would use;
   * `from` says which, for reports ("argv of pid 4242", "manifest /etc/kubernetes/manifests/etcd.yaml").
   */
  argv(): Promise<{ argv: string[]; from: string }>;
  /** The flag's value in effect (from argv()). */
  getFlag(flag: string): Promise<string | undefined>;
  /** Change a flag for the next start (does not restart). `changed: false` when it already had this value. */
  setFlag(flag: string, value: string): Promise<{ changed: boolean; previous?: string }>;
}
