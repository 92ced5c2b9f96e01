/**
 * The daemon's S3-compatible object store (storage.s3): uploads a finished recording file and verifies it,
 * reads objects back (whole or by range) for the API and the page, and deletes a recording's objects.
 * AWS SDK v3 (@aws-sdk/client-s3, and @aws-sdk/lib-storage's Upload for multipart), nothing home-made on
 * the wire.
 *
 * How an upload is verified, and why this way (docs/TESTING.md "What s3api verifies", pinned against
 * OpenStack Swift's s3api): flexible checksums (x-amz-checksum-*) are accepted and ignored by some S3
 * implementations, so they prove nothing. What every S3 implementation does is (1) check the SigV4 payload
 * hash of a Buffer body — lib-storage cuts the file into Buffer parts, so each part (or the single PUT) goes
 * out with its SHA-256 signed, and a part damaged on the way is refused — and (2) give the object an ETag
 * that is the MD5 of its bytes (single PUT) or the MD5 of its parts' binary MD5s followed by `-N`
 * (multipart). So the file is hashed while it is read for the upload (the whole MD5 and each part's MD5, at
 * the same part boundaries lib-storage cuts at), and afterwards HeadObject must report exactly the local
 * size and exactly the ETag computed here. Only then does the caller count the file as stored.
 *
 * The client is configured for S3-compatible servers: `requestChecksumCalculation: 'WHEN_REQUIRED'` (the
 * SDK's default would send streams aws-chunked with a trailing checksum, which s3api and others refuse),
 * path-style addressing by default, and `throwOnRequestTimeout` (without it a request to a hung endpoint
 * only logs a warning and never ends). Secrets never appear in errors: messages are scrubbed of both keys.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Config, S3Credentials } from './config';
import { StorageError } from './store';

/** How long a connection may take to open, ms. */
const CONNECT_TIMEOUT_MS = 5000;
/** How long a request may sit without a byte moving before it fails, ms (a hung endpoint). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Parts of one upload in memory at a time (each `part-size` bytes). */
const PARTS_IN_FLIGHT = 2;

/** What an upload stored, as verified. */
export interface StoredObject {
  key: string;
  bytes: number;
  /** The object's ETag, without quotes. */
  etag: string;
  /** The local file's mtime when it was read (a later change means it must go up again). */
  mtimeMs: number;
}

/** An object as HeadObject reports it. */
export interface ObjectHead {
  bytes: number;
  etag: string;
  lastModified: Date | null;
}

/**
 * Hashes the bytes passing through: the MD5 of all of them, and the MD5 of each `partSize` piece (the
 * parts lib-storage's Upload cuts: it sends a body of at most one part with a single PutObject, else parts
 * of exactly `partSize` bytes and a shorter last one).
 */
class UploadHash extends Transform {
  private readonly whole = createHash('md5');
  private part: Hash = createHash('md5');
  private partBytes = 0;
  private readonly parts: Buffer[] = [];
  total = 0;

  constructor(private readonly partSize: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.whole.update(chunk);
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, this.partSize - this.partBytes);
      this.part.update(chunk.subarray(at, at + take));
      this.partBytes += take;
      at += take;
      if (this.partBytes === this.partSize) {
        this.parts.push(this.part.digest());
        this.part = createHash('md5');
        this.partBytes = 0;
      }
    }
    this.total += chunk.length;
    done(null, chunk);
  }

  /** The ETag S3 gives the object: the MD5 for a single PUT, `md5(md5(p1) ‖ … ‖ md5(pN))-N` for N parts. */
  etag(): string {
    if (this.total <= this.partSize) return this.whole.digest('hex');
    const parts = this.partBytes > 0 ? [...this.parts, this.part.digest()] : this.parts;
    return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
  }
}

/** The ETag without its quotes (S3 sends `"…"`). */
function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

export class S3Store {
  readonly bucket: string;
  readonly prefix: string;
  readonly partSize: number;
  private readonly client: S3Client;
  private readonly secrets: string[];

  constructor(config: S3Config, credentials: S3Credentials) {
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.partSize = config['part-size'];
    this.secrets = [credentials.secretAccessKey, credentials.accessKeyId].filter((s) => s.length >= 4);
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      credentials,
      forcePathStyle: config['path-style'],
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A failed upload is tried again by the queue with its own backoff; the SDK retries once for blips.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
    });
  }

  /** The key of a recording's file: `<prefix><recording id>/<file>`. */
  key(id: string, file: string): string {
    return `${this.prefix}${id}/${file}`;
  }

  /**
   * Uploads `file` to `key` and verifies it (the module's comment: HeadObject's size and ETag against the
   * local size and the MD5s computed while reading). Throws StorageError: `S3_ERROR` when a call failed,
   * `UPLOAD_VERIFY_FAILED` when the object is not what was read, or the file changed while it was read.
   */
  async upload(file: string, key: string, signal: AbortSignal, contentType?: string): Promise<StoredObject> {
    const before = await fs.stat(file);
    const hash = new UploadHash(this.partSize);
    const body = pipeline(createReadStream(file), hash, () => undefined);
    const upload = new Upload({
      client: this.client, partSize: this.partSize, queueSize: PARTS_IN_FLIGHT, leavePartsOnError: false,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentLength: before.size, ...(contentType === undefined ? {} : { ContentType: contentType }) },
    });
    const onAbort = (): void => { void upload.abort(); };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      throw this.wrap(`upload of ${key}`, err);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    const after = await fs.stat(file);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || hash.total !== before.size) {
      throw new StorageError('UPLOAD_VERIFY_FAILED', `${file} changed while it was uploaded (${before.size} → ${after.size} bytes, ${hash.total} read): it goes up again`);
    }
    const expected = hash.etag();
    const head = await this.head(key);
    if (head === null) throw new StorageError('UPLOAD_VERIFY_FAILED', `${key}: not found right after its upload`);
    if (head.bytes !== before.size || head.etag !== expected) {
      throw new StorageError('UPLOAD_VERIFY_FAILED', `${key}: the object is ${head.bytes} bytes with ETag ${head.etag}, the file ${before.size} bytes with ETag ${expected}`);
    }
    return { key, bytes: before.size, etag: expected, mtimeMs: before.mtimeMs };
  }

  /** HeadObject: the object's size and ETag, or null when there is none. */
  async head(key: string): Promise<ObjectHead | null> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: h.ContentLength ?? -1, etag: bareEtag(h.ETag), lastModified: h.LastModified ?? null };
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw this.wrap(`HeadObject ${key}`, err);
    }
  }

  /** The bytes `range` (inclusive) of an object as a stream; rejects before any byte when the object cannot be had. */
  async get(key: string, range: { start: number; end: number }): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${range.start}-${range.end}` }));
      // In Node.js the body is the response's IncomingMessage (a Readable).
      const body = r.Body as Readable | undefined;
      if (body === undefined) throw new Error('no body');
      return body;
    } catch (err) {
      throw this.wrap(`GetObject ${key}`, err);
    }
  }

  /** `length` bytes at `position` of an object (fewer at its end). */
  async read(key: string, position: number, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    const stream = await this.get(key, { start: position, end: position + length - 1 });
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Deletes every object of recording `id` (everything under `<prefix><id>/`, found by listing, so objects
   * whose upload was never recorded go too) and aborts its unfinished multipart uploads (a daemon killed
   * mid-upload leaves their parts behind). Returns the number of objects deleted.
   */
  async deleteRecording(id: string): Promise<number> {
    const prefix = this.key(id, '');
    let deleted = 0;
    try {
      let token: string | undefined;
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
        // One DeleteObject per key: DeleteObjects needs a Content-MD5 or checksum that not every
        // S3-compatible server takes from this SDK; a recording has few objects (PNG frames aside).
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue;
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: o.Key }));
          deleted++;
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      const pending = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }));
      for (const u of pending.Uploads ?? []) {
        if (u.Key !== undefined && u.UploadId !== undefined) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
      }
    } catch (err) {
      throw this.wrap(`deleting the objects under ${prefix}`, err);
    }
    return deleted;
  }

  /** HeadBucket: resolves when the bucket is there and the keys are accepted. */
  async checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.wrap(`bucket ${this.bucket}`, err);
    }
  }

  destroy(): void {
    this.client.destroy();
  }

  /** A StorageError saying what failed, with the SDK's error name and HTTP status, and no secret in it. */
  private wrap(what: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    let message = `${what} failed: ${e.name ?? 'Error'}${status === undefined ? '' : ` (HTTP ${status})`}: ${e.message ?? String(err)}`;
    for (const s of this.secrets) message = message.split(s).join('***');
    return new StorageError('S3_ERROR', message);
  }
}
