/**
 * An S3-compatible server on 127.0.0.1 for tests of the bucket copies: the npm package `s3rver` (a faithful
 * stand-in for S3's REST API on a local directory; no real S3 can be reached from here). It does not implement
 * everything S3 does (conditional writes with If-None-Match are accepted but not enforced): tests say so where it
 * matters. Credentials are s3rver's fixed S3RVER/S3RVER.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePorts } from './etcd-cluster.ts';

export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

export interface S3Standin {
  endpoint: string;
  client: S3Client;
  stop(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<S3Standin> {
  const S3rver = createRequire(import.meta.url)('s3rver') as new (o: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };
  const dir = mkdtempSync(join(tmpdir(), 'runbook-s3-'));
  const [port] = await freePorts(1);
  const srv = new S3rver({ address: '127.0.0.1', port, directory: dir, silent: true });
  await srv.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (const b of buckets) await client.send(new CreateBucketCommand({ Bucket: b }));
  return {
    endpoint,
    client,
    async stop() {
      client.destroy();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
