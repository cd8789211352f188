/**
 * Copies to an S3-compatible bucket (`s3://bucket/prefix`). Each object is written once, with its sha256 in the
 * object's metadata (`x-amz-meta-sha256`) and `If-None-Match: *` (S3 then refuses to replace an existing key); it
 * counts as copied only after it was read back whole from the bucket and its sha256 matched. runbook never
 * deletes objects: retention is the bucket's job (turn on versioning and a lifecycle rule that expires noncurrent
 * versions and old objects under the prefix after the retention you want; README "Continuous backup").
 *
 * Credentials come from the AWS SDK's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an
 * instance role); they never appear in messages. `endpoint` points at an S3-compatible service (MinIO, Ceph…),
 * addressed path-style. Checksums are only sent where S3 requires them (the SDK's newer default, trailing CRC
 * checksums, is not understood by every S3-compatible server); our own sha256 check covers the bytes anyway.
 */
import { createReadStream, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, NotFound, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { StepError, UserError, messageOf } from '../util/errors.ts';
import type { CopyDestination } from './copy.ts';

export interface S3Spec {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
}

/** `s3://bucket/some/prefix` → bucket and prefix (no leading or trailing slash). */
export function parseS3Url(url: string, flag: string): Pick<S3Spec, 'bucket' | 'prefix'> {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(url);
  if (!m) throw new UserError(`${flag}: expected s3://<bucket>[/<prefix>] with a valid bucket name, got ${JSON.stringify(url.slice(0, 100))}`);
  return { bucket: m[1]!, prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

function isNotFound(err: unknown): boolean {
  return err instanceof NotFound || (err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound'));
}

export function s3Destination(spec: S3Spec, client?: S3Client): CopyDestination {
  const s3 =
    client ??
    new S3Client({
      region: spec.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(spec.endpoint ? { endpoint: spec.endpoint, forcePathStyle: true } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const key = (rel: string) => (spec.prefix ? `${spec.prefix}/${rel}` : rel);
  const label = `s3://${spec.bucket}${spec.prefix ? `/${spec.prefix}` : ''}${spec.endpoint ? ` at ${spec.endpoint}` : ''}`;
  const fail = (what: string, err: unknown) => new StepError('transient', `${label}: ${what}: ${messageOf(err)}`, { cause: err });

  /** sha256 of the object as the bucket serves it (streamed). */
  const readBack = async (k: string, signal?: AbortSignal): Promise<string> => {
    const got = await s3.send(new GetObjectCommand({ Bucket: spec.bucket, Key: k }), signal ? { abortSignal: signal } : {});
    const h = createHash('sha256');
    for await (const chunk of got.Body as AsyncIterable<Uint8Array>) h.update(chunk);
    return h.digest('hex');
  };

  return {
    label,
    async existing(rel, signal) {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: spec.bucket, Key: key(rel) }), signal ? { abortSignal: signal } : {});
        // An object without our metadata (put there by something else) is read to learn what it holds.
        return head.Metadata?.sha256 ?? (await readBack(key(rel), signal));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw fail(`cannot look at ${key(rel)}`, err);
      }
    },
    async put(local, rel, sha256, signal) {
      const k = key(rel);
      try {
        await s3.send(
          new PutObjectCommand({ Bucket: spec.bucket, Key: k, Body: createReadStream(local), ContentLength: statSync(local).size, Metadata: { sha256 }, IfNoneMatch: '*' }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (err) {
        throw fail(`cannot put ${k}`, err);
      }
      const theirs = await readBack(k, signal).catch((err: unknown) => {
        throw fail(`cannot read back ${k}`, err);
      });
      if (theirs !== sha256) {
        throw new StepError('failed', `${label}: ${k} reads back with sha256 ${theirs.slice(0, 12)}…, expected ${sha256.slice(0, 12)}… (left in the bucket; runbook never deletes)`);
      }
    },
  };
}
