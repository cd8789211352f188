#!/usr/bin/env node
// Entry point. runbook's sources are TypeScript run by Node's built-in type stripping (Node >= 22.18),
// so there is no build step between a checkout and a working CLI.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `runbook: Node ${process.versions.node} is too old; Node >= 22.18 is needed (24 LTS recommended).\n` +
      `  Run scripts/bootstrap.sh, which installs Node 24 into .tools/ when the machine's Node is older.\n`,
  );
  process.exit(2);
}
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name === 'ExperimentalWarning') return;
  // grpc-js passes the endpoint's host as the TLS server name, and Node warns when that is an IP address (most etcd
  // client URLs are): nothing an operator can act on, and noise in the middle of a recovery. Certificates are
  // still verified against the address.
  if (w.code === 'DEP0123') return;
  process.stderr.write(`${w.name}: ${w.message}\n`);
});
// `runbook history | head`: a closed pipe is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
// Cache compiled (type-stripped) modules between runs: a cold CLI start drops from ~0.9 s to ~0.5 s.
// The cache lives with the user's caches ($NODE_COMPILE_CACHE, else $XDG_CACHE_HOME or ~/.cache), never in $TMPDIR:
// a rehearsal must leave its temp dir empty.
const { enableCompileCache } = await import('node:module');
const { homedir } = await import('node:os');
const { join } = await import('node:path');
try {
  enableCompileCache?.(process.env.NODE_COMPILE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'runbook', 'node-compile-cache'));
} catch {
  /* a cache is an optimisation only */
}
// Run from the bundle in dist/ when it is fresh (rebuilt first when src/ changed), else from src/: see bin/bundle.js.
let entry;
if (process.env.RUNBOOK_FROM_SOURCE !== '1') {
  const { buildBundle, freshBundle } = await import('./bundle.js');
  const root = join(import.meta.dirname, '..');
  const debug = (why) => process.env.RUNBOOK_DEBUG && process.stderr.write(`runbook: running from src/: ${why}\n`);
  entry = freshBundle(root) ?? (await buildBundle(root, debug));
}
const { main } = await import(entry ?? '../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// Everything a command must finish is awaited before main() returns (journal fsyncs, the lock's release, a
// store's flush; `serve` returns only once it has stopped), and stdout/stderr are synchronous for files, pipes and
// terminals on Linux: exit now rather than wait for gRPC channels and sockets to wind down (20–60 ms a run).
if (process.platform === 'linux') process.exit();
