/**
 * Who a cluster is, as data: what a run is pinned to and what the journal's `cluster.identity` records carry. Types
 * only, so the journal's record union (src/events/types.ts), the engine (src/execute/identity.ts compares them) and
 * the stores (which lock by them) share them without importing each other.
 */
export interface IdentityMember {
  /** Hex member id, as etcdctl prints it. */
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
  /** The etcd version the member reports in its status (null when its status could not be read). */
  version: string | null;
}

export interface ClusterIdentity {
  /** Hex cluster id from the members' response headers; null when no member answered. */
  clusterId: string | null;
  /** As etcd lists them (empty when no member answered). */
  members: IdentityMember[];
  /**
   * Sorted, normalized peer URLs (host names resolved to addresses): etcd's member list when a member answered,
   * merged with the inventory's. What keys the lock and identifies the cluster when nothing answers.
   */
  peerURLs: string[];
  /** Why no member could tell who it is (each member's error), when clusterId is null. */
  errors?: string[];
}

/** Why an identity record was journaled. */
export type IdentityReason =
  | 'start'          // read at the start of the run, before any step
  | 'resume'         // the run had no identity yet (no member answered before, or a run from an older version)
  | 'first-answer'   // the first time a member answered, after a start on a cluster that was down
  | 'restore'        // a restore gives the cluster new ids: the identity before it is superseded, the new one is pending
  | 'after-restore'; // the new identity, read once the restored members answer
