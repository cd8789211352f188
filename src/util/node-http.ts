/**
 * node:http and node:https, loaded the CommonJS way. An ESM `import … from 'node:http'` builds the module's ESM
 * facade, which reads every export — including the lazy WebSocket/EventSource getters that load Node's bundled
 * undici (~30 ms of every cold CLI start, measured: BENCHMARKS.md). `process.getBuiltinModule` returns the same
 * module object without the facade, so undici is never loaded unless something really uses it.
 */
export const http = process.getBuiltinModule('node:http');
export const https = process.getBuiltinModule('node:https');
