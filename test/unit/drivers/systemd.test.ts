/** The systemd driver's pure parts: ETCD_* names, the EnvironmentFile format, and `systemctl show` output. */
import { describe, expect, it } from 'vitest';
import { envFileValue, envFlagName, flagEnvName, parseEnvFile, setEnvFileValue, withEnvFlags } from '../../../src/drivers/env-file.ts';
import { getFlag } from '../../../src/drivers/process.ts';
import { parseUnitView } from '../../../src/drivers/systemd.ts';

const has = (argv: string[], flag: string) => getFlag(argv, flag) !== undefined;

describe('etcd flags as environment variables', () => {
  it('maps flag names both ways', () => {
    expect(flagEnvName('quota-backend-bytes')).toBe('ETCD_QUOTA_BACKEND_BYTES');
    expect(flagEnvName('--data-dir')).toBe('ETCD_DATA_DIR');
    expect(envFlagName('ETCD_QUOTA_BACKEND_BYTES')).toBe('quota-backend-bytes');
    expect(envFlagName('ETCDCTL_API')).toBeUndefined();
    expect(envFlagName('PATH')).toBeUndefined();
  });

  it('the command line wins over the environment, as in etcd', () => {
    expect(withEnvFlags(['etcd', '--name=a'], { ETCD_NAME: 'b', ETCD_QUOTA_BACKEND_BYTES: '8', HOME: '/root' }, has)).toEqual(['etcd', '--name=a', '--quota-backend-bytes=8']);
  });
});

describe('EnvironmentFile', () => {
  const text = [
    '# kubespray /etc/etcd.env',
    'ETCD_NAME=etcd1',
    '; a comment',
    'ETCD_INITIAL_CLUSTER="etcd1=https://10.0.0.1:2380,\\',
    'etcd2=https://10.0.0.2:2380"',
    "ETCD_LOG_LEVEL='info'",
    'ETCD_QUOTA_BACKEND_BYTES=2147483648',
    'not an assignment',
    '',
  ].join('\n');

  it('parses assignments as systemd does: comments, quotes, continued lines; the last one wins', () => {
    expect(parseEnvFile(text).map((a) => [a.key, a.value])).toEqual([
      ['ETCD_NAME', 'etcd1'],
      ['ETCD_INITIAL_CLUSTER', 'etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380'],
      ['ETCD_LOG_LEVEL', 'info'],
      ['ETCD_QUOTA_BACKEND_BYTES', '2147483648'],
    ]);
    expect(envFileValue('A=1\nA=2\n', 'A')).toBe('2');
  });

  it('sets a value in place and leaves every other byte alone', () => {
    const r = setEnvFileValue(text, 'ETCD_QUOTA_BACKEND_BYTES', '8589934592');
    expect(r).toMatchObject({ changed: true, previous: '2147483648' });
    expect(r.text).toBe(text.replace('ETCD_QUOTA_BACKEND_BYTES=2147483648', 'ETCD_QUOTA_BACKEND_BYTES=8589934592'));
    // a continued assignment is replaced as a whole
    const c = setEnvFileValue(text, 'ETCD_INITIAL_CLUSTER', 'etcd1=https://10.0.0.1:2380');
    expect(c.text.split('\n')).toHaveLength(text.split('\n').length - 1);
    expect(envFileValue(c.text, 'ETCD_INITIAL_CLUSTER')).toBe('etcd1=https://10.0.0.1:2380');
    expect(envFileValue(c.text, 'ETCD_LOG_LEVEL')).toBe('info');
  });

  it('rewrites every assignment of the key (none later undoes it), appends when absent, quotes when needed', () => {
    expect(setEnvFileValue('A=1\nB=2\nA=3\n', 'A', '9').text).toBe('A=9\nB=2\nA=9\n');
    expect(setEnvFileValue('B=2', 'A', '9').text).toBe('B=2\nA=9\n');
    expect(setEnvFileValue('', 'A', '9').text).toBe('A=9\n');
    const q = setEnvFileValue('', 'A', 'two words "quoted" $HOME');
    expect(q.text).toBe('A="two words \\"quoted\\" \\$HOME"\n');
    expect(envFileValue(q.text, 'A')).toBe('two words "quoted" $HOME');
    expect(setEnvFileValue('A=9\n', 'A', '9')).toEqual({ text: 'A=9\n', changed: false, previous: '9' });
    expect(() => setEnvFileValue('', 'A', 'x\ny')).toThrow(/line break/);
  });
});

describe('systemctl show', () => {
  it('reads systemd 252 output: states, main pid, ExecStart argv, env files, Environment, the live process', () => {
    const argv = ['/usr/local/bin/etcd', '--name=etcd1'];
    const environ = ['PATH=/usr/bin', 'ETCD_QUOTA_BACKEND_BYTES=8589934592'];
    const out = [
      'MainPID=4242',
      'ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd --name=etcd1 ; ignore_errors=no ; start_time=[Mon 2026-12-07 09:00:00 UTC] ; stop_time=[n/a] ; pid=4242 ; code=(null) ; status=0/0 }',
      'EnvironmentFiles=/etc/etcd.env (ignore_errors=no)',
      'EnvironmentFiles=/etc/etcd.local.env (ignore_errors=yes)',
      'Environment=GOMAXPROCS=2 "ETCD_LOG_LEVEL=debug info"',
      'LoadState=loaded',
      'ActiveState=active',
      'SubState=running',
      'PID=4242',
      `CMDLINE=${Buffer.from(`${argv.join('\0')}\0`).toString('base64')}`,
      `ENVIRON=${Buffer.from(`${environ.join('\0')}\0`).toString('base64')}`,
      '',
    ].join('\n');
    expect(parseUnitView(out)).toEqual({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      mainPid: 4242,
      execStart: argv,
      envFiles: [{ path: '/etc/etcd.env', optional: false }, { path: '/etc/etcd.local.env', optional: true }],
      environment: { GOMAXPROCS: '2', ETCD_LOG_LEVEL: 'debug info' },
      live: { pid: 4242, argv, env: { PATH: '/usr/bin', ETCD_QUOTA_BACKEND_BYTES: '8589934592' } },
    });
    expect(parseUnitView('LoadState=not-found\nActiveState=inactive\nMainPID=0\nExecStart=\n')).toMatchObject({ loadState: 'not-found', mainPid: 0, envFiles: [] });
  });
});
