import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChatopsConfig, resolveSecrets } from '../../../src/chatops/config.ts';
import { UserError, formatDiagnostic } from '../../../src/util/errors.ts';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-chatops-config-'));
  fs.writeFileSync(path.join(dir, 'prod.yaml'), 'name: prod\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(text: string): string {
  const f = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadChatopsConfig(write(text), env);
  } catch (err) {
    if (err instanceof UserError) return err.diagnostics.map((d) => formatDiagnostic(d).replace(`${dir}/`, ''));
    throw err;
  }
  return [];
}

const minimal = 'clusters: { prod: ./prod.yaml }\nrunbooks:\n  nospace-recovery: { users: [U1], channels: [C1] }\n';

describe('chatops.yaml', () => {
  it('applies defaults and resolves paths relative to the file', () => {
    const cfg = loadChatopsConfig(write(minimal), { RUNBOOK_STATE_DIR: '/var/tmp/rb' });
    expect(cfg.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(cfg.stateDir).toBe('/var/tmp/rb');
    expect(cfg.clusters.prod?.inventory).toBe(path.join(dir, 'prod.yaml'));
    expect(cfg.runbooks['nospace-recovery']).toMatchObject({ approvers: [], autoRun: false });
    expect(cfg.cooldownMs).toBe(30 * 60_000);
    expect(cfg.approvalTimeoutMs).toBe(30 * 60_000);
  });

  it('refuses inline secrets, pointing at them, without repeating the value', () => {
    const p = problems(`secrets:\n  alertmanagerToken: hunter2-hunter2\n${minimal}`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^c-\w+\.yaml:2:22: secrets\.alertmanagerToken: inline secrets are not allowed/);
    expect(p[0]).not.toContain('hunter2');
  });

  it('reports schema and meaning problems at file:line:col', () => {
    expect(problems(`listen: nowhere\n${minimal}`)[0]).toMatch(/:1:9: listen: expected host:port/);
    expect(problems(`cooldown: soon\n${minimal}`)[0]).toMatch(/:1:11: cooldown: not a duration/);
    expect(problems(`${minimal}alerts:\n  etcdNoSpace: { runbook: nospace-recovery }\n`)[0]).toMatch(/alertmanagerToken is not/);
    expect(problems(`secrets: { alertmanagerToken: { env: AM } }\n${minimal}alerts:\n  etcdNoSpace: { runbook: other }\n`)[0]).toMatch(/:6:27: alerts\.etcdNoSpace\.runbook: "other" is not configured/);
    expect(problems('clusters: { prod: ./nope.yaml }\nrunbooks: {}\n')[0]).toMatch(/:1:19: clusters\.prod: inventory .* does not exist/);
    expect(problems(`slack: { channel: C1 }\n${minimal}`)[0]).toMatch(/slack needs secrets\.slackSigningSecret/);
    expect(problems(`secretz: {}\n${minimal}`)[0]).toMatch(/:1:1: unknown key "secretz" \(did you mean "secrets"\?\)/);
  });

  it('reads secrets from env vars and files, and names the reference (not the value) when one is missing', () => {
    const tok = path.join(dir, 'tok');
    fs.writeFileSync(tok, 'file-secret-value-123\n');
    const cfg = loadChatopsConfig(write(`secrets:\n  slackSigningSecret: { env: SS }\n  slackBotToken: { file: ./tok }\nslack: {}\n${minimal}`), {});
    expect(resolveSecrets(cfg, { SS: 'env-secret-value-456' })).toEqual({ slackSigningSecret: 'env-secret-value-456', slackBotToken: 'file-secret-value-123' });
    expect(() => resolveSecrets(cfg, {})).toThrow(/environment variable SS is not set/);
    expect(() => resolveSecrets(cfg, { SS: 'short' })).toThrow(/too short/);
  });
});
