/*
 * A stand-in for `systemctl`, for tests of the systemd driver: these machines have systemd's tools but systemd is
 * not PID 1 (`systemctl` answers "System has not been booted with systemd"), so there is no real service manager.
 * Plain CommonJS so that any Node runs it; test/support/systemd-standin.ts puts a `systemctl` wrapper first on PATH.
 *
 * What it models, from one state dir ($RUNBOOK_SYSTEMCTL_STANDIN): unit files in `units/<unit>` ([Service]
 * ExecStart= with backslash continuations and quoting, Environment=, EnvironmentFile= with the optional `-`,
 * TimeoutStopSec=; an empty assignment resets the list, as in systemd) and these commands, with systemd's output
 * formats where the driver reads them:
 *   show -p P… [--value] -- UNIT   LoadState, ActiveState, SubState, MainPID, ExecStart ({ path=… ; argv[]=… ; … }),
 *                                  EnvironmentFiles (one line per file, "(ignore_errors=…)"), Environment
 *   start [--no-block] -- UNIT     a clean environment (PATH, then Environment=, then each EnvironmentFile=, later
 *                                  ones winning), detached, output appended to logs/<unit>.log; a missing required
 *                                  EnvironmentFile fails the unit (ActiveState=failed) as systemd does
 *   stop -- UNIT                   SIGTERM, SIGKILL after TimeoutStopSec (default 90 s), returns once it is gone
 *   kill --signal=SIG -- UNIT      signals the main process
 *   reset-failed -- UNIT, daemon-reload
 * A main process that exits without a stop leaves the unit "failed". The main pid is also written to the path in
 * `pidfiles/<unit>` when that file exists (so a test harness that tracks pid files sees it).
 *
 * What it does not model: D-Bus, cgroups (only the main process is signalled), Type=notify readiness (the unit is
 * active once its process runs, which is what `start --no-block` returns on anyway), Restart=, start limits,
 * dependencies, specifiers (%n), $VAR expansion in ExecStart, drop-in directories, user units.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const root = process.env.RUNBOOK_SYSTEMCTL_STANDIN;
if (!root) {
  process.stderr.write('System has not been booted with systemd as init system (PID 1). Can\'t operate.\n');
  process.exit(1);
}
const dirs = { units: path.join(root, 'units'), state: path.join(root, 'state'), logs: path.join(root, 'logs'), pidfiles: path.join(root, 'pidfiles') };
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });

function words(text) {
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] !== undefined ? m[2] : m[3]);
  return out;
}

function parseUnit(name) {
  const file = path.join(dirs.units, name);
  if (!fs.existsSync(file)) return undefined;
  const unit = { execStart: [], environment: [], envFiles: [], timeoutStopSec: 90 };
  let section = '';
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i];
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(t);
    if (sec) { section = sec[1]; continue; }
    if (section !== 'Service') continue;
    const eq = t.indexOf('=');
    if (eq < 0) continue;
    const key = t.slice(0, eq).trim();
    const value = t.slice(eq + 1).trim();
    if (key === 'ExecStart') unit.execStart = value === '' ? [] : words(value);
    else if (key === 'Environment') { if (value === '') unit.environment = []; else unit.environment.push(...words(value)); }
    else if (key === 'EnvironmentFile') { if (value === '') unit.envFiles = []; else unit.envFiles.push(value.startsWith('-') ? { path: value.slice(1), optional: true } : { path: value, optional: false }); }
    else if (key === 'TimeoutStopSec') unit.timeoutStopSec = Number(value.replace(/s$/, '')) || 90;
  }
  return unit;
}

/** systemd's EnvironmentFile= syntax: KEY=VALUE, # and ; comments, quotes, backslash continuation. */
function parseEnvFile(text) {
  const env = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i];
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(t);
    if (!m) continue;
    let v = m[2].trim();
    if (v.length >= 2 && v[0] === '"' && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    else if (v.length >= 2 && v[0] === "'" && v.endsWith("'")) v = v.slice(1, -1);
    env[m[1]] = v;
  }
  return env;
}

const stateFile = (name) => path.join(dirs.state, `${name}.json`);
function readState(name) {
  try { return JSON.parse(fs.readFileSync(stateFile(name), 'utf8')); } catch { return { pid: 0, program: '', stopped: true, failed: false }; }
}
function writeState(name, st) {
  const tmp = `${stateFile(name)}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(st));
  fs.renameSync(tmp, stateFile(name));
}

/** Field 22 of /proc/<pid>/stat: when the process started (clock ticks after boot). With the pid, it names one process. */
function startTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return undefined; }
}

/**
 * The unit's main process is still the one it started: alive, not a zombie, running its program, and started when
 * it was (pids are recycled: a unit whose process was SIGKILLed may name, by pid and program alone, another test's
 * etcd, and stopping the unit would then kill that one, silently if it had not yet set up its signal handlers).
 */
function alive(pid, program, started) {
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    if (started !== undefined && startTime(pid) !== started) return false;
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    return argv0 === program;
  } catch { return false; }
}

function view(name) {
  const unit = parseUnit(name);
  const st = readState(name);
  const up = alive(st.pid, st.program, st.started);
  const failed = !up && (st.failed || (st.pid > 0 && !st.stopped));
  return {
    LoadState: unit ? 'loaded' : 'not-found',
    ActiveState: up ? 'active' : failed ? 'failed' : 'inactive',
    SubState: up ? 'running' : failed ? 'failed' : 'dead',
    MainPID: up ? String(st.pid) : '0',
    ExecStart: unit && unit.execStart.length ? `{ path=${unit.execStart[0]} ; argv[]=${unit.execStart.join(' ')} ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }` : '',
    EnvironmentFiles: unit ? unit.envFiles.map((f) => `${f.path} (ignore_errors=${f.optional ? 'yes' : 'no'})`) : [],
    Environment: unit ? unit.environment.map((w) => (/\s/.test(w) ? `"${w}"` : w)).join(' ') : '',
    _up: up,
    _unit: unit,
    _st: st,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitGone(pid, program, started, ms) {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (!alive(pid, program, started)) return true;
  return !alive(pid, program, started);
}

function unitArg(args) {
  const i = args.indexOf('--');
  const name = i >= 0 ? args[i + 1] : args.filter((a) => !a.startsWith('-')).at(-1);
  if (!name) { process.stderr.write('Too few arguments.\n'); process.exit(1); }
  return name;
}

async function main(argv) {
  const [verb, ...args] = argv;
  switch (verb) {
    case 'daemon-reload':
      return 0;
    case 'show': {
      const name = unitArg(args);
      const props = [];
      for (let i = 0; i < args.length; i++) if (args[i] === '-p' || args[i] === '--property') props.push(...args[++i].split(','));
      const v = view(name);
      const valueOnly = args.includes('--value');
      for (const p of props) {
        const val = v[p];
        if (val === undefined) continue;
        for (const one of Array.isArray(val) ? val : [val]) process.stdout.write(valueOnly ? `${one}\n` : `${p}=${one}\n`);
      }
      return 0;
    }
    case 'start': {
      const name = unitArg(args);
      const v = view(name);
      if (!v._unit) { process.stderr.write(`Failed to start ${name}: Unit ${name} not found.\n`); return 5; }
      if (v._up) return 0;
      const unit = v._unit;
      const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
      for (const w of unit.environment) { const i = w.indexOf('='); if (i > 0) env[w.slice(0, i)] = w.slice(i + 1); }
      for (const f of unit.envFiles) {
        let text;
        try { text = fs.readFileSync(f.path, 'utf8'); } catch {
          if (f.optional) continue;
          writeState(name, { pid: 0, program: '', stopped: false, failed: true });
          if (args.includes('--no-block')) return 0;
          process.stderr.write(`Job for ${name} failed because of unavailable resources or another system error.\n`);
          return 1;
        }
        Object.assign(env, parseEnvFile(text));
      }
      const [program, ...rest] = unit.execStart;
      const out = fs.openSync(path.join(dirs.logs, `${name}.log`), 'a');
      const child = spawn(program, rest, { detached: true, stdio: ['ignore', out, out], env });
      const pid = await new Promise((resolve) => { child.once('spawn', () => resolve(child.pid)); child.once('error', () => resolve(0)); });
      child.unref();
      writeState(name, { pid, program, ...(pid ? { started: startTime(pid) } : {}), stopped: false, failed: pid === 0 });
      const pf = path.join(dirs.pidfiles, name);
      if (pid && fs.existsSync(pf)) fs.writeFileSync(fs.readFileSync(pf, 'utf8').trim(), `${pid}\n`);
      return 0;
    }
    case 'stop': {
      const name = unitArg(args);
      const v = view(name);
      if (!v._unit) { process.stderr.write(`Failed to stop ${name}: Unit ${name} not loaded.\n`); return 5; }
      const st = v._st;
      if (v._up) {
        try { process.kill(st.pid, 'SIGTERM'); } catch {}
        if (!(await waitGone(st.pid, st.program, st.started, v._unit.timeoutStopSec * 1000))) {
          try { process.kill(st.pid, 'SIGKILL'); } catch {}
          await waitGone(st.pid, st.program, st.started, 5000);
        }
      }
      writeState(name, { pid: 0, program: '', stopped: true, failed: false });
      return 0;
    }
    case 'kill': {
      const name = unitArg(args);
      const sig = (args.find((a) => a.startsWith('--signal=')) || '--signal=SIGTERM').slice('--signal='.length);
      const v = view(name);
      if (v._up) try { process.kill(v._st.pid, sig); } catch {}
      return 0;
    }
    case 'reset-failed': {
      const name = unitArg(args);
      const v = view(name);
      if (!v._up) writeState(name, { pid: 0, program: '', stopped: true, failed: false });
      return 0;
    }
    default:
      process.stderr.write(`Unknown command verb ${verb}.\n`);
      return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => { process.stderr.write(`${err && err.stack || err}\n`); process.exit(1); });
