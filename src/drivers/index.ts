/**
 * The one place that maps an inventory driver spec to a driver: actions, diagnose and tests call `driverFor(member)`
 * from here.
 */
import type { DriverSpec, MemberSpec, SshHost } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { processDriver } from './process.ts';
import { remoteProcessDriver } from './remote-process.ts';
import { staticPodDriver, staticPodPaths } from './static-pod.ts';
import { systemdDriver } from './systemd.ts';
import type { MemberDriver } from './types.ts';

export type { DriverStartOptions, DriverStopOptions, MemberDriver } from './types.ts';

/** Anything a driver can run: an etcd member, or a control-plane component (kube-apiserver) of the inventory. */
export interface Driven {
  name: string;
  driver: DriverSpec;
  ssh?: SshHost;
}

/** The driver for a member (or an inventory component), by its driver type. */
export function driverFor(target: Driven | MemberSpec): MemberDriver {
  const spec = target.driver;
  switch (spec.type) {
    case 'process':
      // A member on another host: the same command line and pid file, over ssh.
      if (target.ssh) return remoteProcessDriver(target);
      // processDriver reads only name, driver and ssh.
      return processDriver({ clientURL: '', peerURL: '', ...target } as MemberSpec);
    case 'static-pod':
      return staticPodDriver(target);
    case 'none':
      throw new StepError('invalid', `${target.name} has no driver (driver: none), so it cannot be stopped, started or reconfigured`, {
        member: target.name,
        hint: 'give it a driver in the inventory, or do this step by hand',
      });
    case 'systemd':
      return systemdDriver(target);
    default:
      throw new StepError('invalid', `${target.name}: unknown driver type ${JSON.stringify((spec as { type: unknown }).type)}`, { member: target.name });
  }
}

/** How a driver does things, for plans and messages ("move /etc/kubernetes/manifests/etcd.yaml out …"). */
export function describeDriver(target: Driven): { stop: string; start: string; setFlag: string } {
  const spec = target.driver;
  switch (spec.type) {
    case 'process':
      return {
        stop: `SIGTERM the process in ${spec.pidFile} (SIGKILL after the grace period)`,
        start: `start ${spec.command[0] ?? '?'} (pid file ${spec.pidFile})`,
        setFlag: `record the flag in ${spec.pidFile}.argv.json (applied on every start)`,
      };
    case 'static-pod': {
      const p = staticPodPaths(spec, target.name);
      return {
        stop: `move ${p.manifest} to ${p.parked} (the kubelet stops the pod)`,
        start: `move ${p.parked} back to ${p.manifest} (the kubelet starts the pod)`,
        setFlag: `edit the command in the manifest after a backup to ${p.backupDir}/${p.stem}.<timestamp>${p.ext}`,
      };
    }
    case 'systemd':
      return {
        stop: `systemctl stop ${spec.unit}`,
        start: `systemctl start --no-block ${spec.unit} (after reset-failed)`,
        setFlag: `set ETCD_<FLAG> in ${spec.envFile ?? "the unit's EnvironmentFile"} after a copy to <file>.runbook-<timestamp>`,
      };
    case 'none':
      return { stop: 'nothing (driver: none)', start: 'nothing (driver: none)', setFlag: 'nothing (driver: none)' };
  }
}
