/** What every request handler of `runbook serve` works with (built once by startChatopsServer). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AlertRouter } from './alerts.ts';
import type { AuditLog } from './audit.ts';
import type { ChatSink, Platform } from './chat.ts';
import type { ChatopsConfig, Secrets } from './config.ts';
import type { ChatopsMetrics } from './metrics.ts';
import type { RunManager } from './run-manager.ts';
import type { ReplayCache } from './verify.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

export interface HandlerContext {
  cfg: ChatopsConfig;
  secrets: Secrets;
  audit: AuditLog;
  metrics: ChatopsMetrics;
  runs: RunManager;
  sinks: Partial<Record<Platform, ChatSink>>;
  /** Log a line (scrubbed of secrets, prefixed). */
  log: (msg: string) => void;
  /** Slack request signatures already seen (replays are refused). */
  replay: ReplayCache;
  alerts: AlertRouter;
  /** Where alert-started runs post (the configured Slack or Mattermost channel), if anywhere. */
  alertSink: () => { sink: ChatSink; channel: string } | undefined;
  /** Answer 401 and audit the refusal. */
  refuse401: (res: ServerResponse, req: IncomingMessage, route: string, source: string, reason: string) => void;
}
