/**
 * Ports for throwaway clusters: free ones on 127.0.0.1, in a range below the kernel's ephemeral ports, never handed
 * out twice by this process.
 */
import { createServer } from 'node:net';
import { UserError } from '../util/errors.ts';

/** Where throwaway clusters take their ports: below the kernel's ephemeral range (32768+ on Linux). */
const DEFAULT_PORT_RANGE: [number, number] = [20_000, 31_999];

/**
 * `RUNBOOK_PORT_RANGE=lo-hi` narrows where throwaway clusters take their ports (a machine with firewall rules; the
 * test suite gives each parallel worker its own slice, so one worker never picks a port another worker's killed
 * member is about to be restarted on).
 */
export function portRange(env: NodeJS.ProcessEnv = process.env): [number, number] {
  const raw = env.RUNBOOK_PORT_RANGE;
  if (raw === undefined || raw === '') return DEFAULT_PORT_RANGE;
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(raw.trim());
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!(lo >= 1024 && hi <= 65535 && hi - lo >= 63)) {
    throw new UserError(`RUNBOOK_PORT_RANGE=${JSON.stringify(raw.slice(0, 40))}: expected lo-hi, 1024 <= lo, hi <= 65535, at least 64 ports (e.g. 20000-31999)`);
  }
  return [lo, hi];
}

/** Ports this process already handed out: never handed out twice (a killed member's port stays its own). */
const handedOut = new Set<number>();

/**
 * n distinct free TCP ports on 127.0.0.1 in portRange(), none handed out before by this process, picked below the
 * kernel's ephemeral range (so an outgoing connection cannot take one between this check and etcd's bind).
 */
export async function freePorts(n: number): Promise<number[]> {
  const [lo, hi] = portRange();
  if (handedOut.size > (hi - lo + 1) / 2) handedOut.clear(); // a long-lived process: start over rather than run dry
  const ports: number[] = [];
  for (let tries = 0; ports.length < n; tries++) {
    if (tries > 200 * n) throw new Error(`freePorts: no free port in ${lo}-${hi} after ${tries} tries`);
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (ports.includes(port) || handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) ports.push(port);
  }
  for (const p of ports) handedOut.add(p);
  return ports;
}
