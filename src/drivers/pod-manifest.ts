/**
 * A static pod's manifest as text (pure): the argv its etcd container runs, and the same manifest with one flag set,
 * edited in place so that comments, indentation, quoting and key order stay byte for byte.
 */
import { Document, isMap, isSeq, parseDocument } from 'yaml';
import { StepError } from '../util/errors.ts';
import { getFlag, setFlag } from './process.ts';

interface ArgvLocation {
  container: number;
  /** The list holding the flag: command, or args when the flag is there. */
  field: 'command' | 'args';
  command: string[];
  args: string[];
}

function parseManifest(text: string, file: string): Document {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new StepError('invalid', `${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  return doc;
}

function stringList(doc: Document, path: (string | number)[], file: string): string[] {
  const node = doc.getIn(path, true);
  if (node === undefined) return [];
  if (!isSeq(node)) throw new StepError('invalid', `${file}: ${path.join('.')} is not a list`);
  return node.items.map((item, i) => {
    const v = (item as { value?: unknown })?.value ?? item;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new StepError('invalid', `${file}: ${path.join('.')}[${i}] is not a string`);
    return String(v);
  });
}

/** The container that runs the process: the one named `etcd` (or `prefer`), else the first. */
function locate(doc: Document, file: string, prefer = 'etcd'): Omit<ArgvLocation, 'field'> {
  const containers = doc.getIn(['spec', 'containers'], true);
  if (!isSeq(containers) || containers.items.length === 0) throw new StepError('invalid', `${file}: no spec.containers (is this a pod manifest?)`);
  let container = containers.items.findIndex((c) => isMap(c) && c.get('name') === prefer);
  if (container < 0) container = 0;
  const command = stringList(doc, ['spec', 'containers', container, 'command'], file);
  const args = stringList(doc, ['spec', 'containers', container, 'args'], file);
  if (command.length === 0) throw new StepError('invalid', `${file}: spec.containers[${container}].command is empty; the driver needs the process's command line there`);
  return { container, command, args };
}

/** The argv the pod runs (command + args). */
export function manifestArgv(text: string, file = 'manifest'): string[] {
  const { command, args } = locate(parseManifest(text, file), file);
  return [...command, ...args];
}

/** A YAML scalar for a string that reads back as a string (numbers and booleans are quoted: pod argv must be strings). */
function scalarText(value: string): string {
  if (/[\r\n]/.test(value)) throw new StepError('invalid', `a flag value cannot contain a line break: ${JSON.stringify(value)}`);
  return new Document(value).toString({ lineWidth: 0 }).trimEnd();
}

/**
 * The manifest with `--flag=value` set in the container's argv: rewritten where it is (in `args` when it is there,
 * else in `command`, appended to `command` when absent). The text is edited in place at the changed items' source
 * ranges, so everything else (comments, indentation, quoting, key order) stays byte for byte.
 */
export function setManifestFlag(text: string, flag: string, value: string, file = 'manifest'): { text: string; changed: boolean; previous?: string } {
  const doc = parseManifest(text, file);
  const { container, command, args } = locate(doc, file);
  const previous = getFlag(['_', ...args], flag) ?? getFlag(command, flag);
  if (previous === value) return { text, changed: false, previous };
  const inArgs = getFlag(['_', ...args], flag) !== undefined;
  const field = inArgs ? 'args' : 'command';
  const before = inArgs ? args : command;
  const after = inArgs ? setFlag(['_', ...args], flag, value).slice(1) : setFlag(command, flag, value);
  const seq = doc.getIn(['spec', 'containers', container, field], true);
  if (!isSeq(seq)) throw new StepError('invalid', `${file}: spec.containers[${container}].${field} is not a list`);
  const edits: { start: number; end: number; text: string }[] = [];
  for (let i = 0; i < Math.min(before.length, after.length); i++) {
    if (before[i] === after[i]) continue;
    const range = (seq.items[i] as { range?: [number, number, number] }).range;
    if (!range) throw new StepError('invalid', `${file}: cannot locate ${field}[${i}] in the text`);
    edits.push({ start: range[0], end: range[1], text: scalarText(after[i]!) });
  }
  if (after.length > before.length) {
    const last = seq.items.at(-1) as { range?: [number, number, number] } | undefined;
    const lineStart = last?.range ? text.lastIndexOf('\n', last.range[0] - 1) + 1 : -1;
    const prefix = last?.range ? text.slice(lineStart, last.range[0]) : '';
    if (seq.flow || !/^\s*-\s+$/.test(prefix)) {
      // A flow list ([a, b]) or an unusual layout: let the YAML library write the list.
      for (let i = before.length; i < after.length; i++) doc.addIn(['spec', 'containers', container, field], after[i]);
      for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) doc.setIn(['spec', 'containers', container, field, i], after[i]);
      const out = doc.toString({ lineWidth: 0 });
      return previous === undefined ? { text: out, changed: true } : { text: out, changed: true, previous };
    }
    const lineEnd = text.indexOf('\n', last!.range![1]);
    const at = lineEnd < 0 ? text.length : lineEnd;
    edits.push({ start: at, end: at, text: after.slice(before.length).map((a) => `\n${prefix}${scalarText(a)}`).join('') });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  const check = manifestArgv(out, file);
  if (JSON.stringify(check) !== JSON.stringify(inArgs ? [...command, ...after] : [...after, ...args])) {
    throw new StepError('failed', `${file}: editing --${flag} did not give the expected argv; the manifest was not changed`);
  }
  return previous === undefined ? { text: out, changed: true } : { text: out, changed: true, previous };
}
