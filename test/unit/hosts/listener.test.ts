/**
 * "Something accepts connections on the member's port": which process, for the refusal message. A real child
 * process listens here; the message must name it without echoing its command line (which may hold a password).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeLocalListener, localListener } from '../../../src/hosts/listener.ts';
import { freePorts } from '../../../src/rehearse/ports.ts';

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

/** A node process listening on 127.0.0.1:port, with an etcd-like --name and a secret on its command line. */
async function listenOn(port: number): Promise<ChildProcess> {
  const script = `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('ready'))`;
  const c = spawn(process.execPath, ['-e', script, '--', '--name', 'm9', '--password=hunter2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    c.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  return c;
}

describe('localListener', () => {
  it('names the process listening on a port by pid, program and --name, never the rest of its command line', async () => {
    const [port] = await freePorts(1);
    child = await listenOn(port!);
    const l = localListener(port!);
    const node = basename(process.execPath);
    expect(l).toEqual({ pid: child.pid, command: `${node} --name m9` });
    const text = describeLocalListener(`http://127.0.0.1:${port}`);
    expect(text).toBe(` (pid ${child.pid}: ${node} --name m9)`);
    expect(text).not.toContain('hunter2');
  });

  it('nothing listening, or no port at all: nothing to say', async () => {
    const [port] = await freePorts(1);
    expect(localListener(port!)).toBeUndefined();
    expect(describeLocalListener(`http://127.0.0.1:${port}`)).toBe('');
    expect(localListener(0)).toBeUndefined();
    expect(localListener(70_000)).toBeUndefined();
  });
});
