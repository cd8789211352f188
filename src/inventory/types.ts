/** The inventory (cluster.yaml): what the cluster is made of and how to reach and drive its members. */

export interface SshHost {
  host: string;
  port?: number;
  user?: string;
  identityFile?: string;
  /** Extra `-o` options, e.g. ["StrictHostKeyChecking=yes", "UserKnownHostsFile=/path"]. */
  options?: string[];
}

export type DriverSpec =
  | {
      type: 'process';
      /** argv of the member's etcd process (no shell). Flags the runbook changes are edited in this list. */
      command: string[];
      pidFile: string;
      logFile?: string;
      env?: Record<string, string>;
    }
  | { type: 'static-pod'; manifest: string; backupDir?: string }
  | { type: 'systemd'; unit: string; envFile?: string }
  | { type: 'none' };

export interface MemberSpec {
  name: string;
  clientURL: string;
  peerURL: string;
  dataDir?: string;
  /**
   * Where the member serves /metrics when not on its client URL (etcd's --listen-metrics-urls; kubeadm sets
   * http://127.0.0.1:2381, reachable only on the member's host). The quota it runs with is read there.
   */
  metricsURL?: string;
  /** Where the member's files and process live: absent = this machine. */
  ssh?: SshHost;
  driver: DriverSpec;
}

export interface TlsSpec {
  cacert?: string;
  cert?: string;
  /** Path to the client key. The key's contents are never read into logs, journals or messages. */
  key?: string;
  insecureSkipVerify?: boolean;
}

export interface KubernetesSpec {
  kubeconfig?: string;
  context?: string;
  /** Control-plane components fenced during a restore (stopped before members, started after). */
  apiServers?: { name: string; driver: DriverSpec; ssh?: SshHost }[];
}

export interface Inventory {
  /** Cluster name; with the member URLs it keys the run lock. */
  name: string;
  /** Where the inventory came from (a file path, or "--endpoints"). */
  source: string;
  members: MemberSpec[];
  tls?: TlsSpec;
  auth?: { username: string; passwordEnv?: string; passwordFile?: string };
  kubernetes?: KubernetesSpec;
  snapshots?: { dirs: string[] };
  /** Directory holding etcd, etcdctl, etcdutl (default: PATH). */
  etcdBinDir?: string;
  /** Per-call deadline for etcd requests in ms (default 5000). */
  requestTimeoutMs?: number;
  /** Time allowed to connect to a member, added to the first call's deadline (etcdctl --dial-timeout; default none). */
  dialTimeoutMs?: number;
  /** The backend quota (--quota-backend-bytes) the members run with, when known. */
  quotaBytes?: number;
}
