/** `runbook guard --listen`: /metrics (Prometheus text) and /healthz, nothing else, read-only. */
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { http } from '../util/node-http.ts';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export function serveMetrics(registry: Registry, listen: { host: string; port: number }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end('metrics unavailable\n'),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({ url: `http://${host}:${a.port}`, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}
