/** `runbook serve`: the chat-ops server (Slack/Mattermost commands and approvals, Alertmanager webhook, metrics). */
import type { Command } from 'commander';
import { UserError } from '../common.ts';
import type { Io } from './output.ts';
import { VERSION } from './version.ts';
import type { StoreFlags } from '../index.ts';
import { untilSignal } from './signals.ts';

export function registerServeCommand(program: Command, io: Io): void {
  program
    .command('serve')
    .description('answer chat commands and approvals (Slack, Mattermost) and Alertmanager webhooks; see examples/chatops.yaml')
    .requiredOption('-c, --config <file>', 'chatops.yaml (listen address, secrets by env var or file, clusters, runbooks, alerts)')
    .option('--listen <host:port>', 'override the listen address of the config')
    .option('--check', 'check the config and the secrets, print the routes, and exit')
    .option('--store <url>', 'share runs with other replicas in a management etcd: etcd://host:port[,host:port…]; runs of a dead replica are taken over')
    .option('--store-cacert <file>', 'CA of the management etcd (makes --store use TLS)')
    .option('--store-cert <file>', 'client certificate for the management etcd')
    .option('--store-key <file>', 'client key for the management etcd')
    .option('--replica-id <name>', 'how this replica is named in lock records (default host:pid)')
    .action(async (opts: StoreFlags & { config: string; listen?: string; check?: boolean; replicaId?: string }) => {
      // Loaded here, not at the top: the Slack client and prom-client stay out of every other command's start-up.
      const { loadChatopsConfig, parseListen, resolveSecrets } = await import('../chatops/config.ts');
      const { ROUTES, startChatopsServer } = await import('../chatops/server.ts');
      const config = loadChatopsConfig(opts.config, io.env);
      if (opts.listen) {
        const l = parseListen(opts.listen);
        if (!l) throw new UserError(`--listen: expected host:port, got ${JSON.stringify(opts.listen)}`);
        config.listen = l;
      }
      const secrets = resolveSecrets(config, io.env);
      if (config.tls) {
        const { tlsPairProblem } = await import('../common.ts');
        const problem = tlsPairProblem(config.tls.cert, config.tls.key);
        if (problem) throw new UserError(`${config.file}: tls: ${problem}`);
      }
      if (opts.check) {
        io.out(`${config.file}: ok`);
        io.out(`  listen ${config.listen.host}:${config.listen.port}${config.tls ? ' (TLS)' : ''}, state dir ${config.stateDir}`);
        io.out(`  clusters: ${Object.keys(config.clusters).join(', ') || 'none'}; runbooks: ${Object.keys(config.runbooks).join(', ') || 'none'}; alerts: ${Object.keys(config.alerts).join(', ') || 'none'}`);
        io.out(`  routes: ${Object.values(ROUTES).join(' ')}`);
        const guarded = Object.entries(config.clusters).filter(([, c]) => c.guard);
        if (guarded.length) io.out(`  guards: ${guarded.map(([n, c]) => `${n} (every ${c.guard!.intervalMs / 1000}s, rules ${c.guard!.rules.map((r) => r.name).join(', ')})`).join('; ')}`);
        const streamed = Object.entries(config.clusters).filter(([, c]) => c.backup).map(([n]) => n);
        if (streamed.length) io.out(`  backup streams: ${streamed.join(', ')} (one replica at a time per cluster)`);
        return;
      }
      const { openStore } = await import('../run-records.ts');
      const opened = opts.store || io.env.RUNBOOK_STORE ? await openStore(opts, io.env, config.stateDir) : undefined;
      const store = opened?.kind === 'etcd' ? opened : undefined;
      let server;
      try {
        server = await startChatopsServer({ config, secrets, version: VERSION, log: (line) => io.err(line), ...(store ? { store } : {}), ...(opts.replicaId ? { replicaId: opts.replicaId } : {}) });
      } catch (err) {
        await opened?.close();
        throw err;
      }
      io.err(`runbook serve: listening on ${server.url} (${store ? store.description : `state dir ${config.stateDir}`}); Ctrl-C to stop`);
      await untilSignal('runbook serve', (l) => io.err(l), () => (store
        ? 'stopping; runs in progress are handed over to another replica (or: runbook resume RUN --store …)'
        : 'stopping; runs in progress are interrupted and can be resumed (runbook resume RUN)'), async () => {
        await server.close().finally(async () => {
          await opened?.close().catch(() => {});
        });
      });
    });
}
