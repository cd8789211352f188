// The CLI's bundle: src/ and its dependencies built by esbuild into dist/ (one file per lazily loaded part), so a
// cold `runbook run` loads a few dozen files instead of ~470 modules. That is ~200 ms of a ~550 ms cold start
// (BENCHMARKS.md, engine overhead), paid on every recovery.
//
// The bundle is a cache of src/, never a second source of truth:
//   - dist/current.json names the build and every input file it was made from (path, size, mtime); a build is
//     used only while every input is unchanged, else the CLI runs from src/ (and rebuilds, see below).
//   - builds are published atomically (a new dir, then a rename of current.json), so a process that is reading
//     one build is never shown half of another; the five newest builds are kept for processes still loading chunks.
//   - when the bundle is stale and esbuild is installed, the CLI rebuilds it first (~0.5 s, once); when another
//     process is building, or esbuild is missing, or the build fails, it runs from src/ (correct, only slower).
// RUNBOOK_FROM_SOURCE=1 skips the bundle altogether.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEEP_BUILDS = 5;
// Every output file starts with this: CommonJS dependencies call require() (ESM output has none of its own), and
// __runbookRoot() finds the checkout from wherever the file is (dist/<build>/main.js or dist/<build>/chunks/…).
const BANNER = [
  "import { createRequire as __runbookCreateRequire } from 'node:module';",
  "import { fileURLToPath as __runbookFileURLToPath } from 'node:url';",
  'const require = __runbookCreateRequire(import.meta.url);',
  "const __runbookRoot = (p) => { const f = __runbookFileURLToPath(import.meta.url); return f.slice(0, f.lastIndexOf('/dist/') + 1) + p; };",
].join(' ');
const LOCK_STALE_MS = 60_000;

/** The entry of a build that is current and fresh, else undefined. Cheap: one JSON read and one stat per input. */
export function freshBundle(root) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, 'dist', 'current.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (!manifest || typeof manifest.dir !== 'string' || typeof manifest.inputs !== 'object') return undefined;
  for (const [file, [size, mtimeMs]] of Object.entries(manifest.inputs)) {
    try {
      const s = statSync(join(root, file));
      if (s.size !== size || s.mtimeMs !== mtimeMs) return undefined;
    } catch {
      return undefined;
    }
  }
  const entry = join(root, 'dist', manifest.dir, 'main.js');
  return existsSync(entry) ? entry : undefined;
}

function takeLock(file) {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      closeSync(openSync(file, 'wx'));
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') return false;
      try {
        if (Date.now() - statSync(file).mtimeMs < LOCK_STALE_MS) return false; // someone is building right now
        rmSync(file, { force: true }); // left by a build that died
      } catch {
        return false;
      }
    }
  }
  return false;
}

/**
 * Build the bundle and make it current. Returns its entry, or undefined when it could not be built here (no
 * esbuild, a read-only checkout, another process building); `why` gets the reason.
 */
export async function buildBundle(root, why = () => {}) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    why('esbuild is not installed');
    return undefined;
  }
  const dist = join(root, 'dist');
  try {
    mkdirSync(dist, { recursive: true });
  } catch (err) {
    why(`cannot create ${dist}: ${err.code}`);
    return undefined;
  }
  const lock = join(dist, '.building');
  if (!takeLock(lock)) {
    why('another process is building the bundle');
    return undefined;
  }
  const name = `b-${Date.now().toString(36)}-${process.pid}`;
  const tmp = join(dist, `.tmp-${name}`);
  try {
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: 'src/cli/main.ts' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      outdir: tmp,
      chunkNames: 'chunks/[name]-[hash]',
      // Class and function names survive (errors and logs name them); nothing is minified.
      keepNames: true,
      metafile: true,
      logLevel: 'silent',
      // CommonJS dependencies call require(); ESM output has none of its own.
      banner: { js: BANNER },
      plugins: [etcd3ProtoPlugin(root), dirnamePlugin(root)],
    });
    // What the build depends on: our own sources, one by one, and the installed dependencies as a whole (npm
    // rewrites node_modules/.package-lock.json on every install): ~170 stats on each start instead of ~800.
    const inputs = {};
    const files = Object.keys(result.metafile.inputs).filter((f) => !f.includes(':') && !f.startsWith('node_modules/'));
    for (const file of [...files, 'bin/bundle.js', 'package.json', 'package-lock.json', 'node_modules/.package-lock.json']) {
      if (!existsSync(join(root, file))) continue;
      const s = statSync(join(root, file));
      inputs[file] = [s.size, s.mtimeMs];
    }
    renameSync(tmp, join(dist, name));
    const current = join(dist, `.current-${process.pid}.json`);
    writeFileSync(current, JSON.stringify({ dir: name, builtAt: new Date().toISOString(), inputs }));
    renameSync(current, join(dist, 'current.json'));
    prune(dist, name);
    return join(dist, name, 'main.js');
  } catch (err) {
    why(`build failed: ${err.message?.split('\n')[0] ?? err}`);
    rmSync(tmp, { recursive: true, force: true });
    return undefined;
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Remove all but the newest builds (our own build output, never anybody's data). */
function prune(dist, keep) {
  const builds = readdirSync(dist).filter((d) => d.startsWith('b-') && d !== keep).sort((a, b) => statSync(join(dist, b)).mtimeMs - statSync(join(dist, a)).mtimeMs);
  for (const old of builds.slice(KEEP_BUILDS - 1)) rmSync(join(dist, old), { recursive: true, force: true });
}

// etcd3 parses its .proto files (text) every time it is loaded (~40 ms; from JSON ~15 ms less, BENCHMARKS.md). The bundle
// carries them already parsed instead: the same protobufjs Root, as JSON, made here from the installed files (so
// it cannot drift from them) and handed to proto-loader's fromJSON with the options etcd3 passes to loadSync.
export const ETCD3_LOAD_CALL = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {';

/** etcd3's rpc.proto and its imports, parsed the way proto-loader's loadSync parses them (keepCase), as JSON. */
export function etcd3ProtoJSON(root) {
  const require = createRequire(join(root, 'node_modules', '@grpc', 'proto-loader', 'package.json'));
  const protobuf = require('protobufjs');
  const file = join(root, 'node_modules', 'etcd3', 'proto', 'rpc.proto');
  return new protobuf.Root().loadSync(file, { keepCase: true }).toJSON({ keepComments: false });
}

/** Patch etcd3's connection pool to use the pre-parsed protos; left unpatched (still correct) if etcd3 changed. */
function etcd3ProtoPlugin(root) {
  return {
    name: 'runbook-etcd3-proto',
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes(ETCD3_LOAD_CALL)) return undefined;
        const json = JSON.stringify(etcd3ProtoJSON(root));
        return withDirname(root, args.path, source.replace(ETCD3_LOAD_CALL, `(0, proto_loader_1.fromJSON)(${json}, {`));
      });
    },
  };
}

/**
 * Dependencies that find their own files with __dirname (etcd3 reads its .proto files at load): give each its
 * real directory, relative to the bundle, so the checkout can move.
 */
function dirnamePlugin(root) {
  return {
    name: 'runbook-dirname',
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        return /\b__dirname\b|\b__filename\b/.test(source) ? withDirname(root, args.path, source) : undefined;
      });
    },
  };
}

/** A module's source with its real __dirname and __filename, relative to the bundle, as esbuild onLoad contents. */
function withDirname(root, path, source) {
  const dir = relative(root, dirname(path));
  const file = relative(root, path);
  const prelude = `var __dirname = __runbookRoot(${JSON.stringify(dir)}), __filename = __runbookRoot(${JSON.stringify(file)});\n`;
  return { contents: prelude + source, loader: 'js', resolveDir: dirname(path) };
}

// `node bin/bundle.js [--force]`: build the bundle unless it is fresh (bootstrap and `npm run build` do this).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const force = process.argv.includes('--force');
  const fresh = force ? undefined : freshBundle(root);
  let reason = '';
  const entry = fresh ?? (await buildBundle(root, (why) => (reason = why)));
  if (!entry) {
    process.stderr.write(`bundle: not built (${reason}); the CLI runs from src/\n`);
    process.exitCode = 1;
  } else process.stdout.write(`${relative(root, entry)}${fresh ? ' (fresh)' : ' (built)'}\n`);
}
