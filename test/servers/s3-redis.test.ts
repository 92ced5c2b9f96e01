/**
 * Tests of the cluster-mode harness (test/helpers/servers/redis.ts, s3.ts; issue 14) through the real
 * clients the daemon will use: Debian's redis-server through ioredis (PING, the eviction policy BullMQ
 * needs, data and port kept across a restart and across a SIGKILL, the client reconnecting by itself), and
 * OpenStack Swift's s3api through @aws-sdk/client-s3 and @aws-sdk/lib-storage (buckets, ranged reads, a
 * 12 MiB multipart upload, listings, deletes, what Swift does with Content-MD5, SigV4 payload hashes and
 * the SDK's flexible checksums, and an endpoint that hangs or goes away and comes back with its data).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException, type S3ClientConfig, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pingRedis, startRedis, type RedisServer } from '../helpers/servers/redis';
import { startS3, type S3Server } from '../helpers/servers/s3';
import { liveServers, stopAllServers, useServerCleanup } from '../helpers/servers/registry';
import { testTimeoutFor, waitFor } from '../helpers/wait';
import { timedTests } from '../helpers/timed';

useServerCleanup();

const { timed, notes } = timedTests('Redis/S3 harness', testTimeoutFor(2));

/** An ioredis client that reconnects quickly (the default backoff would make a restart test slow, not wrong). */
function redisClient(srv: RedisServer): Redis {
  return new Redis(srv.url, { retryStrategy: (times) => Math.min(times * 50, 500), lazyConnect: false });
}

describe('Redis', () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  timed('PING through ioredis, noeviction by default, loopback only', async () => {
    const srv = await startRedis();
    notes.push(`  redis-server start-up: ${srv.startupMs} ms`);
    expect(srv.url).toBe(`redis://127.0.0.1:${srv.port}`);
    const r = redisClient(srv);
    clients.push(r);
    expect(await r.ping()).toBe('PONG');
    expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await r.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    // Persistence is in the temp dir, nowhere else.
    expect(await r.config('GET', 'dir')).toEqual(['dir', `${srv.dir}/data`]);
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    await srv.stop();
  });

  timed('another eviction policy is set when asked (for the daemon\'s refusal test)', async () => {
    const srv = await startRedis({ maxmemoryPolicy: 'allkeys-lru', maxmemory: '64mb' });
    const r = redisClient(srv);
    clients.push(r);
    expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lru']);
    expect(await r.config('GET', 'maxmemory')).toEqual(['maxmemory', String(64 * 1024 * 1024)]);
    await srv.stop();
  });

  timed('restart and kill+restart keep the port and the data; ioredis reconnects by itself', async () => {
    const srv = await startRedis();
    const r = redisClient(srv);
    clients.push(r);
    let readies = 0;
    r.on('ready', () => { readies++; });
    await waitFor('the first ready', () => (readies >= 1 ? true : undefined));
    await r.set('before-restart', 'v1');
    await r.rpush('queue', 'a', 'b', 'c');
    const pid1 = srv.pid();

    const t0 = Date.now();
    await srv.restart();
    notes.push(`  redis restart (SIGTERM, start, PONG): ${Date.now() - t0} ms`);
    expect(srv.pid()).not.toBe(pid1);
    expect(srv.url).toBe(`redis://127.0.0.1:${srv.port}`);
    await waitFor('ioredis to reconnect after the restart', () => (readies >= 2 ? true : undefined));
    expect(await r.get('before-restart')).toBe('v1');
    expect(await r.lrange('queue', 0, -1)).toEqual(['a', 'b', 'c']);

    // A crash: SIGKILL runs no shutdown code, but the AOF was written before the reply to SET.
    await r.set('before-kill', 'v2');
    await srv.kill();
    expect(srv.running()).toBe(false);
    await expect(pingRedis(srv.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await srv.restart();
    await waitFor('ioredis to reconnect after the kill', () => (readies >= 3 ? true : undefined));
    expect(await r.get('before-kill')).toBe('v2');
    expect(await r.get('before-restart')).toBe('v1');
    await srv.stop();
  });

  timed('BullMQ: a job queued before a Redis restart is processed after it', async () => {
    const srv = await startRedis();
    const connection = { host: srv.host, port: srv.port };
    const queue = new Queue('recordings', { connection });
    let worker: Worker | undefined;
    try {
      await queue.add('record', { target: 'vnc://example:5900' }, { jobId: 'rec-1' });
      expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
      await srv.restart();
      // The queue's connection comes back by itself and still sees the job.
      expect(await waitFor('the job to be listed as waiting after the restart', async () => {
        try {
          const n = (await queue.getJobCounts('waiting')).waiting;
          return n;
        } catch {
          return undefined; // still reconnecting
        }
      })).toBe(1);
      const done: string[] = [];
      worker = new Worker('recordings', (job) => Promise.resolve((job.data as { target: string }).target), { connection });
      worker.on('completed', (job) => { done.push(`${String(job.id)}:${String(job.returnvalue)}`); });
      await waitFor('the worker to complete rec-1', () => (done.length > 0 ? true : undefined));
      expect(done).toEqual(['rec-1:vnc://example:5900']);
    } finally {
      await worker?.close();
      await queue.close();
      await srv.stop();
    }
  });

  timed('without persistence a restart comes back empty (so the test above can fail)', async () => {
    const srv = await startRedis({ persistence: 'none' });
    const r = redisClient(srv);
    clients.push(r);
    await r.set('k', 'v');
    await srv.restart();
    await waitFor('the key to read back as gone after the restart', async () => {
      try {
        return (await r.get('k')) === null ? true : undefined;
      } catch {
        return undefined; // still reconnecting
      }
    });
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    await srv.stop();
  });
});

describe('S3 (Swift s3api)', () => {
  let s3: S3Server;
  let client: S3Client;
  const bucket = 'deskrec-test';
  /** What went over the wire for each SDK call: the headers after signing. */
  const wire: { command: string; headers: Record<string, string> }[] = [];

  function config(srv: S3Server, extra: Partial<S3ClientConfig> = {}): S3ClientConfig {
    return {
      endpoint: srv.endpoint,
      region: srv.region,
      credentials: { accessKeyId: srv.accessKey, secretAccessKey: srv.secretKey },
      forcePathStyle: true,
      ...extra,
    };
  }

  function recordWire(c: S3Client): void {
    c.middlewareStack.add((next, context) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      wire.push({ command: String(context.commandName), headers: { ...req.headers ?? {} } });
      return next(args);
    }, { step: 'finalizeRequest', priority: 'low', name: 'recordWire' });
  }

  beforeAll(async () => {
    s3 = await startS3();
    notes.push(`  Swift S3 start-up (rings, 5 processes, all healthy): ${s3.startupMs} ms`);
    client = new S3Client(config(s3));
    recordWire(client);
  }, 120000);
  afterAll(() => { client.destroy(); });

  timed('buckets: S3 CreateBucket, HeadBucket; a Swift-created bucket is an S3 bucket too', async () => {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    await s3.createBucket('made-by-swift');
    await client.send(new HeadBucketCommand({ Bucket: 'made-by-swift' }));
    await expect(client.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  timed('PutObject, HeadObject, ranged GetObject; Swift\'s own API sees the same object', async () => {
    const body = randomBytes(1024 * 1024 + 17);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain/one.bin', Body: body, ContentType: 'video/mp4' }));
    const md5 = createHash('md5').update(body).digest('hex');
    expect(put.ETag).toBe(`"${md5}"`);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'plain/one.bin' }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.ContentType).toBe('video/mp4');
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'plain/one.bin', Range: 'bytes=1000-1999' }));
    expect(got.ContentRange).toBe(`bytes 1000-1999/${body.length}`);
    const bytes = Buffer.from(await got.Body?.transformToByteArray() ?? []);
    expect(bytes.equals(body.subarray(1000, 2000))).toBe(true);
    const info = await s3.objectInfo(bucket, 'plain/one.bin');
    expect(info).toMatchObject({ size: body.length, etag: md5 });
  });

  timed('multipart upload of 12 MiB in 5 MiB parts through lib-storage Upload', async () => {
    const body = randomBytes(12 * 1024 * 1024);
    const partSize = 5 * 1024 * 1024;
    const t0 = Date.now();
    const wireBefore = wire.length;
    const up = new Upload({ client, params: { Bucket: bucket, Key: 'multi/twelve.bin', Body: body, ContentType: 'video/mp4' }, partSize, queueSize: 2 });
    const done = await up.done();
    notes.push(`  12 MiB multipart upload: ${Date.now() - t0} ms`);
    // S3's multipart ETag: MD5 of the parts' binary MD5s, "-" part count.
    const parts: Buffer[] = [];
    for (let o = 0; o < body.length; o += partSize) parts.push(createHash('md5').update(body.subarray(o, o + partSize)).digest());
    const expected = `"${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}"`;
    notes.push(`  multipart ETag: ${String(done.ETag)} (S3 formula: ${expected})`);
    expect(done.ETag).toBe(expected);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi/twelve.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.ETag).toBe(expected);
    expect(head.ContentType).toBe('video/mp4');
    // No flexible checksums come back, even with ChecksumMode (s3api does not keep them).
    expect([head.ChecksumCRC32, head.ChecksumSHA256, head.ChecksumType]).toEqual([undefined, undefined, undefined]);
    // A range across the first part boundary, then the whole object.
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'multi/twelve.bin', Range: `bytes=${partSize - 10}-${partSize + 9}` }));
    expect(Buffer.from(await r.Body?.transformToByteArray() ?? []).equals(body.subarray(partSize - 10, partSize + 10))).toBe(true);
    const all = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'multi/twelve.bin' }));
    const whole = Buffer.from(await all.Body?.transformToByteArray() ?? []);
    expect(createHash('sha256').update(whole).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    const info = await s3.objectInfo(bucket, 'multi/twelve.bin');
    expect(info?.size).toBe(body.length);
    // To Swift it is a static large object; Swift's own ETag is not the S3 one (the MD5 of the segments' ETags).
    expect(info?.headers['x-static-large-object']).toBe('True');
    expect(`"${info?.etag ?? ''}"`).not.toBe(expected);
    // Each part went out signed with its SHA-256, which s3api checks.
    const sent = wire.slice(wireBefore).filter((w) => w.command === 'UploadPartCommand').map((w) => w.headers['x-amz-content-sha256']).sort();
    const partSha = [];
    for (let o = 0; o < body.length; o += partSize) partSha.push(createHash('sha256').update(body.subarray(o, o + partSize)).digest('hex'));
    expect(sent).toEqual(partSha.sort());
  }, testTimeoutFor(3));

  timed('ListObjectsV2 with a prefix, DeleteObject', async () => {
    for (const k of ['list/a/1', 'list/a/2', 'list/b/1']) await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
    const a = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/a/' }));
    expect((a.Contents ?? []).map((o) => [o.Key, o.Size])).toEqual([['list/a/1', 8], ['list/a/2', 8]]);
    const dirs = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/', Delimiter: '/' }));
    expect((dirs.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(['list/a/', 'list/b/']);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'list/a/1' }));
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'list/a/1' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/a/' }));
    expect((after.Contents ?? []).map((o) => o.Key)).toEqual(['list/a/2']);
    expect((await s3.listObjects(bucket, 'list/')).map((o) => o.name)).toEqual(['list/a/2', 'list/b/1']);
  });

  /** The error a call failed with, or undefined when it succeeded. */
  async function failure(call: Promise<unknown>): Promise<S3ServiceException | undefined> {
    try {
      await call;
      return undefined;
    } catch (e) {
      if (e instanceof S3ServiceException) return e;
      throw e;
    }
  }

  /** The signed headers of the last call of `command` that went over the wire. */
  function lastWire(command: string): Record<string, string> {
    const w = wire.filter((x) => x.command === command).at(-1);
    if (w === undefined) throw new Error(`no ${command} on the wire`);
    return w.headers;
  }

  // These pin what Swift 2.30's s3api does with each integrity mechanism (docs/TESTING.md, "What s3api
  // verifies"); the cluster feature's upload verification is built on exactly this.
  timed('integrity: Content-MD5 and the SigV4 payload hash are verified, flexible checksums ignored', async () => {
    const body = Buffer.from('integrity check body');
    const sha256Hex = createHash('sha256').update(body).digest('hex');
    const md5 = createHash('md5').update(body).digest('base64');
    const wrongMd5 = createHash('md5').update('something else').digest('base64');

    // Content-MD5: honoured; a wrong one is refused and stores nothing.
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/md5-ok', Body: body, ContentMD5: md5 }));
    const badMd5 = await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/md5-bad', Body: body, ContentMD5: wrongMd5 })));
    expect([badMd5?.name, badMd5?.$metadata.httpStatusCode]).toEqual(['BadDigest', 400]);
    expect(await s3.objectInfo(bucket, 'integrity/md5-bad')).toBeUndefined();

    // A Buffer body is signed with its SHA-256 (x-amz-content-sha256, even over plain HTTP) ...
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/signed', Body: body }));
    expect(lastWire('PutObjectCommand')['x-amz-content-sha256']).toBe(sha256Hex);
    // ... and s3api hashes what it receives: a validly signed but wrong payload hash is refused.
    const tamper = new S3Client(config(s3));
    tamper.middlewareStack.add((next) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers !== undefined) req.headers['x-amz-content-sha256'] = createHash('sha256').update('not the body').digest('hex');
      return next(args);
    }, { step: 'build', priority: 'low', name: 'wrongPayloadHash' });
    const badHash = await failure(tamper.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/sha-bad', Body: body })));
    tamper.destroy();
    expect([badHash?.name, badHash?.$metadata.httpStatusCode]).toEqual(['BadDigest', 400]);
    expect(await s3.objectInfo(bucket, 'integrity/sha-bad')).toBeUndefined();

    // Flexible checksums (x-amz-checksum-*): the SDK sends CRC32 by default; s3api neither checks nor keeps them.
    expect(lastWire('PutObjectCommand')['x-amz-checksum-crc32']).toBeDefined();
    const wrongSha = createHash('sha256').update('nope').digest('base64');
    expect(await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/sha256-bad', Body: body, ChecksumSHA256: wrongSha })))).toBeUndefined();
    expect(await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/crc32-bad', Body: body, ChecksumCRC32: 'AAAAAA==' })))).toBeUndefined();
    const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'integrity/sha256-bad', ChecksumMode: 'ENABLED' }));
    expect([h.ChecksumSHA256, h.ChecksumCRC32, h.ChecksumCRC32C, h.ChecksumType]).toEqual([undefined, undefined, undefined, undefined]);

    // A stream body (a segment file read from disk): the SDK's default (requestChecksumCalculation
    // WHEN_SUPPORTED) sends it aws-chunked with a trailing checksum, which s3api refuses ...
    const stream = (): Readable => Readable.from([body.subarray(0, 10), body.subarray(10)]);
    const chunked = await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/stream-default', Body: stream(), ContentLength: body.length })));
    expect(lastWire('PutObjectCommand')['content-encoding']).toBe('aws-chunked');
    expect([chunked?.name, chunked?.$metadata.httpStatusCode]).toEqual(['NotImplemented', 501]);
    // ... WHEN_REQUIRED sends it as is, but UNSIGNED-PAYLOAD: only a Content-MD5 then protects it.
    const plain = new S3Client(config(s3, { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }));
    recordWire(plain);
    try {
      await plain.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/stream', Body: stream(), ContentLength: body.length }));
      expect(lastWire('PutObjectCommand')['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      const streamBadMd5 = await failure(plain.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/stream-md5-bad', Body: stream(), ContentLength: body.length, ContentMD5: wrongMd5 })));
      expect(streamBadMd5?.name).toBe('BadDigest');
      await plain.send(new PutObjectCommand({ Bucket: bucket, Key: 'integrity/stream-md5', Body: stream(), ContentLength: body.length, ContentMD5: md5 }));
      expect(await s3.objectInfo(bucket, 'integrity/stream-md5')).toMatchObject({ size: body.length, etag: createHash('md5').update(body).digest('hex') });

      // lib-storage's Upload cuts a stream into Buffer parts, so with WHEN_REQUIRED each part is still
      // signed with its SHA-256 (and so verified by s3api).
      const file = randomBytes(6 * 1024 * 1024);
      const partSize = 5 * 1024 * 1024;
      const chunks = Array.from({ length: 6 }, (_, i) => file.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
      const before = wire.length;
      await new Upload({ client: plain, params: { Bucket: bucket, Key: 'integrity/stream-upload', Body: Readable.from(chunks) }, partSize, queueSize: 1 }).done();
      const partHashes = wire.slice(before).filter((w) => w.command === 'UploadPartCommand').map((w) => w.headers['x-amz-content-sha256']).sort();
      const expected = [file.subarray(0, partSize), file.subarray(partSize)].map((p) => createHash('sha256').update(p).digest('hex')).sort();
      expect(partHashes).toEqual(expected);
      expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'integrity/stream-upload' }))).ContentLength).toBe(file.length);
    } finally {
      plain.destroy();
    }
  });

  timed('multipart integrity: UploadPart honours Content-MD5, CompleteMultipartUpload checks the part ETags', async () => {
    const key = 'integrity/mpu';
    const part = randomBytes(256 * 1024);
    const partMd5 = createHash('md5').update(part).digest();
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const UploadId = created.UploadId;
    expect(UploadId).toBeDefined();
    const wrong = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: part,
      ContentMD5: createHash('md5').update('other').digest('base64') })).then(() => undefined, (e: unknown) => e);
    expect(wrong).toBeInstanceOf(S3ServiceException);
    expect((wrong as S3ServiceException).name).toBe('BadDigest');
    const ok = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: part, ContentMD5: partMd5.toString('base64') }));
    expect(ok.ETag).toBe(`"${partMd5.toString('hex')}"`);
    const badComplete = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${'0'.repeat(32)}"` }] } })).then(() => undefined, (e: unknown) => e);
    expect(badComplete).toBeInstanceOf(S3ServiceException);
    notes.push(`  Complete with a wrong part ETag: ${(badComplete as S3ServiceException).name}`);
    expect((badComplete as S3ServiceException).name).toBe('InvalidPart');
    const done = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: ok.ETag }] } }));
    expect(done.ETag).toBe(`"${createHash('md5').update(partMd5).digest('hex')}-1"`);
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength).toBe(part.length);
    // An abandoned upload can be aborted (the daemon's clean-up of a failed upload).
    const dropped = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'integrity/abandoned' }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: 'integrity/abandoned', UploadId: dropped.UploadId, PartNumber: 1, Body: part }));
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'integrity/abandoned', UploadId: dropped.UploadId }));
    const pending = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect((pending.Uploads ?? []).map((u) => u.Key)).toEqual([]);
  });

  timed('endpoint hung (paused) or down: calls fail fast; back up: same port, same data', async () => {
    const body = randomBytes(64 * 1024);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'survive/down.bin', Body: body }));
    // One attempt, short timeouts: the test wants to see the failure, not the SDK's retries.
    // throwOnRequestTimeout: without it requestTimeout only logs a warning and the call hangs on.
    const impatient = new S3Client(config(s3, { maxAttempts: 1, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true } }));
    try {
      s3.pause();
      let t0 = Date.now();
      const hung = await impatient.send(new HeadObjectCommand({ Bucket: bucket, Key: 'survive/down.bin' })).then(() => undefined, (e: unknown) => e);
      notes.push(`  paused proxy: failed after ${Date.now() - t0} ms: ${hung instanceof Error ? `${hung.name}: ${hung.message}` : String(hung)}`);
      expect(hung).toBeInstanceOf(Error);
      s3.resume();
      // Checks that should succeed use the patient client: a cold proxy on a loaded machine may take > 2 s.
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'survive/down.bin' }));

      t0 = Date.now();
      await s3.down();
      notes.push(`  down(): ${Date.now() - t0} ms`);
      expect(s3.isDown()).toBe(true);
      t0 = Date.now();
      const refused = await impatient.send(new HeadObjectCommand({ Bucket: bucket, Key: 'survive/down.bin' })).then(() => undefined, (e: unknown) => e);
      notes.push(`  down endpoint: failed after ${Date.now() - t0} ms: ${refused instanceof Error ? `${refused.name}: ${refused.message}` : String(refused)}`);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toMatch(/ECONNREFUSED/);

      t0 = Date.now();
      await s3.up();
      notes.push(`  up() (all five processes again): ${Date.now() - t0} ms`);
      const port = new URL(s3.endpoint).port;
      expect(port).toBe(String(s3.port));
      // The long-lived client (its keep-alive connections went to the old proxy) gets the object back.
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'survive/down.bin' }));
      expect(Buffer.from(await got.Body?.transformToByteArray() ?? []).equals(body)).toBe(true);
      expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi/twelve.bin' }))).ContentLength).toBe(12 * 1024 * 1024);
      expect((await s3.listObjects(bucket, 'survive/')).map((o) => o.name)).toEqual(['survive/down.bin']);
    } finally {
      s3.resume();
      impatient.destroy();
    }
  }, testTimeoutFor(4));

  test('stopAllServers leaves nothing behind', async () => {
    await stopAllServers();
    expect(liveServers()).toEqual([]);
  });
});
