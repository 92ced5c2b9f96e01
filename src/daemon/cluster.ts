/**
 * Cluster mode (`cluster: {redis: URL}`, issue 14): several daemons share the recording work through
 * BullMQ on one Redis, and keep the cluster's list of recordings and a control channel there. This module
 * is the daemon's only contact with Redis; what a job means (a recording, continued where another daemon
 * left it) lives in daemon.ts.
 *
 * - Work: queue `recordings` with key prefix `deskrec` (keys `deskrec:recordings:*`). A recording started
 *   through the API is a job whose id is the recording id; an `always` target is one job whose id is
 *   `target-<name>` (BullMQ ignores an add whose job id already exists, so every daemon may add it at start
 *   and still only one job exists; only the worker holding the job's lock runs it, so only one daemon
 *   records the target at a time).
 * - Failover: the worker renews its lock every lockDuration/2 while the processor runs; a daemon killed or
 *   cut off stops renewing, the lock expires after LOCK_DURATION_MS, and the next stalled-job check of any
 *   other worker (every STALLED_INTERVAL_MS) moves the job back to waiting, where a free worker takes it.
 * - State: hash `deskrec:state`, field = recording id, value = the recording's JSON as the API shows it,
 *   written by the daemon recording it (finished ones stay until deleted); sorted set `deskrec:index`
 *   (score = the recording's start, ms) orders them, so a page of the list reads only its recordings, not
 *   the whole hash (which at thousands of recordings would be megabytes per call; docs/SCALING.md).
 * - Objects (with storage.s3): hash `deskrec:objects:<recording id>`, field `<part>/<file>`, value where the
 *   file is in S3 ({key, bytes, etag, local}), written by the daemon that uploaded it. The recording's JSON
 *   is written by whichever daemon records it now, from its own copy of the earlier parts; keeping the
 *   uploads apart means a late upload by an earlier part's daemon is never overwritten, and any daemon can
 *   serve any segment that reached S3.
 * - Control: pub/sub channel `deskrec:control` (BullMQ cannot cancel another worker's job): `stop` and
 *   `delete` reach every daemon, and the one concerned acts.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { ConnectError, describeError, UsageError } from '../errors';
import type { ApiRecording, RecordingPart } from './job';
import type { DaemonRecordOptions } from './record-options';
import { finished, objectField, type StoredSegment } from './store';

/** BullMQ's key prefix and queue name: the queue's keys are `deskrec:recordings:*`. */
export const QUEUE_PREFIX = 'deskrec';
export const QUEUE_NAME = 'recordings';
/**
 * How long a job's lock lives without renewal, ms. The worker renews it every half of this while the
 * processor runs. 4 s: short enough for failover within 10 s (expiry ≤ 4 s + the next stalled check ≤ 2 s
 * + the take-over's start), long enough that a busy event loop (an encoder burst on two cores) does not
 * miss two renewals in a row.
 */
export const LOCK_DURATION_MS = 4000;
/** How often each worker looks for jobs whose lock expired (stalled) and puts them back, ms. */
export const STALLED_INTERVAL_MS = 2000;
/**
 * How often a job may stall before BullMQ fails it instead of putting it back. A recording stalls once per
 * daemon that dies under it; failing it would end a recording that any surviving daemon could continue.
 */
export const MAX_STALLED_COUNT = 1_000_000;
const STATE_KEY = 'deskrec:state';
const CONTROL_CHANNEL = 'deskrec:control';
const STOPPED_TARGETS_KEY = 'deskrec:stopped-targets';
const OBJECTS_KEY = 'deskrec:objects:';
const INDEX_KEY = 'deskrec:index';
/** HSET of a recording's JSON only while the recording is in the index (KEYS: state, index; ARGV: id, json). */
const PUT_IF_INDEXED = `if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return -1`;
/** Recordings read per round trip while a filtered list scans the index. */
const SCAN_CHUNK = 500;

/** A file of a recording as stored in S3, as any daemon of the cluster sees it. */
export interface ClusterObject {
  /** The object's key in the bucket. */
  key: string;
  bytes: number;
  etag: string;
  /** When the upload was verified (ISO 8601). */
  verified: string;
  /** The uploading daemon still keeps a local copy. */
  local: boolean;
  /** For a video segment: its record as the uploading daemon has it (final once the file is). */
  segment?: StoredSegment;
}

/** What a job carries: enough for any daemon to start (or continue) the recording. */
export interface ClusterJobData {
  /** The recording id (for an `always` target: of its current recording; a new one after each ends). */
  recording: string;
  kind: 'api' | 'always';
  url: string;
  target: string | null;
  options: DaemonRecordOptions;
  password: { file: string | null; env: string | null };
}

/** A message on the control channel. */
export type ControlMessage = { op: 'stop'; id: string; target: string | null } | { op: 'delete'; id: string };

/** A recording as the cluster state keeps it: the API's JSON plus the parts and the time of the last write. */
export type ClusterRecording = ApiRecording & { parts: RecordingPart[]; updated?: string };

/** What the daemon does for the cluster. */
export interface ClusterHandlers {
  /** Runs a job until its recording ends; throws to hand the job back to the queue. */
  process(job: Job<ClusterJobData>, signal: AbortSignal | undefined): Promise<void>;
  /** A control message (from any daemon, this one included). */
  control(msg: ControlMessage): void;
  /** BullMQ could not renew our lock of these jobs: another daemon may take them. */
  lockLost(jobIds: string[]): void;
  log(level: 'info' | 'warn' | 'error', msg: string): void;
}

/** Redis options for long-lived connections: BullMQ needs `maxRetriesPerRequest: null`; reconnect quickly. */
function redisOptions(): { maxRetriesPerRequest: null; retryStrategy: (times: number) => number } {
  return { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 100, 1000) };
}

export class Cluster {
  private readonly queue: Queue<ClusterJobData>;
  private worker: Worker<ClusterJobData> | null = null;
  private readonly subscriber: Redis;
  /** Connections handed to BullMQ: it does not close connections it was given, so close() does. */
  private readonly owned: Redis[] = [];
  private closed = false;

  private constructor(private readonly redis: Redis, private readonly url: string, private readonly handlers: ClusterHandlers) {
    this.queue = new Queue<ClusterJobData>(QUEUE_NAME, { connection: this.connection(), prefix: QUEUE_PREFIX });
    this.queue.on('error', (err) => { this.onError('queue', err); });
    this.subscriber = new Redis(url, redisOptions());
    this.subscriber.on('error', (err) => { this.onError('control channel', err); });
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel !== CONTROL_CHANNEL) return;
      let msg: ControlMessage;
      try {
        msg = JSON.parse(text) as ControlMessage;
      } catch {
        return;
      }
      handlers.control(msg);
    });
  }

  private connection(): Redis {
    const r = new Redis(this.url, redisOptions());
    this.owned.push(r);
    return r;
  }

  /**
   * Connects to Redis and checks `maxmemory-policy`: BullMQ's keys must never be evicted (an evicted lock
   * or job would record a target twice or lose a recording), so anything but `noeviction` is refused.
   */
  static async connect(url: string, handlers: ClusterHandlers): Promise<Cluster> {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 });
    // The socket's own error (ECONNREFUSED, ENOTFOUND, …) says more than connect()'s "Connection is closed".
    let cause: unknown = null;
    probe.on('error', (err) => { cause ??= err; });
    let policy: string;
    try {
      await probe.connect();
      const reply = await probe.config('GET', 'maxmemory-policy');
      policy = reply[1] ?? '';
    } catch (err) {
      probe.disconnect();
      throw new ConnectError('REDIS_UNREACHABLE', `cluster.redis: cannot reach ${redactUrl(url)}: ${describeError(cause ?? err)}`);
    }
    probe.disconnect();
    if (policy !== 'noeviction') {
      throw new UsageError('REDIS_EVICTION', `cluster.redis: ${redactUrl(url)} has maxmemory-policy '${policy}'; cluster mode needs 'noeviction' (BullMQ's jobs and locks must never be evicted): set it in redis.conf`);
    }
    const redis = new Redis(url, redisOptions());
    const c = new Cluster(redis, url, handlers);
    redis.on('error', (err) => { c.onError('state', err); });
    await c.subscriber.subscribe(CONTROL_CHANNEL);
    // A failed rebuild costs list entries, not the start: logged, and tried again at the next start.
    await c.reindex().catch((err: unknown) => { handlers.log('warn', `cluster state: cannot rebuild the index: ${describeError(err)}`); });
    return c;
  }

  private lastError = '';
  private onError(what: string, err: unknown): void {
    if (this.closed) return;
    // ioredis repeats the same error on every reconnect attempt: one log line per new message.
    const text = `${what}: ${describeError(err)}`;
    if (text === this.lastError) return;
    this.lastError = text;
    this.handlers.log('warn', `cluster Redis ${text}`);
  }

  /** Starts taking jobs, at most `capacity` at a time. */
  startWorker(capacity: number): void {
    const worker = new Worker<ClusterJobData>(QUEUE_NAME, (job, _token, signal) => this.handlers.process(job, signal), {
      connection: this.connection(), prefix: QUEUE_PREFIX, concurrency: capacity,
      lockDuration: LOCK_DURATION_MS, stalledInterval: STALLED_INTERVAL_MS, maxStalledCount: MAX_STALLED_COUNT,
    });
    worker.on('error', (err) => { this.onError('worker', err); });
    worker.on('lockRenewalFailed', (ids) => { this.handlers.lockLost(ids); });
    this.worker = worker;
  }

  /**
   * Adds a job. Job options: removed when done (a target's job id is free again for its next add); a
   * processor that throws (a daemon handing its jobs over as it drains) puts the job back at once.
   */
  async add(jobId: string, data: ClusterJobData): Promise<void> {
    await this.queue.add(data.kind, data, {
      jobId, removeOnComplete: true, removeOnFail: true, attempts: Number.MAX_SAFE_INTEGER, backoff: { type: 'fixed', delay: 200 },
    });
  }

  /** Removes a job that no worker has taken yet; false when it is running (locked) or gone. */
  async removeWaiting(jobId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobId);
    if (job === undefined) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes a recording's JSON to the cluster state. The first write of a recording by this daemon also
   * puts it in the index (NX: its start never changes), in the same transaction; later ones, once a
   * second, are one HSET.
   */
  async put(r: ClusterRecording): Promise<void> {
    const json = JSON.stringify(r);
    if (this.indexed.has(r.id)) {
      // Only while the recording is in the index: a write still queued here when another daemon deleted
      // the recording must not bring it back.
      await this.redis.eval(PUT_IF_INDEXED, 2, STATE_KEY, INDEX_KEY, r.id, json);
    } else {
      checkReplies(await this.redis.multi().hset(STATE_KEY, r.id, json).zadd(INDEX_KEY, 'NX', Date.parse(r.start), r.id).exec());
      this.indexed.add(r.id);
    }
    // A finished recording gets no more writes from here (a later one is a first write again).
    if (finished(r.state)) this.indexed.delete(r.id);
  }

  /** Ids this daemon has put in the index (so that its every-second writes stay one command). */
  private readonly indexed = new Set<string>();

  async get(id: string): Promise<ClusterRecording | null> {
    const text = await this.redis.hget(STATE_KEY, id);
    return text === null ? null : JSON.parse(text) as ClusterRecording;
  }

  /** The recordings of `ids` that are in the state, in that order. */
  private async getMany(ids: readonly string[]): Promise<ClusterRecording[]> {
    if (ids.length === 0) return [];
    const texts = await this.redis.hmget(STATE_KEY, ...ids);
    return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as ClusterRecording);
  }

  /**
   * A page of the cluster's recordings, newest start first, and how many there are. Unfiltered: the page's
   * ids from the index and their JSON, two commands whatever the cluster's size. With `keep`: the index is
   * read in chunks of SCAN_CHUNK and each chunk's JSON filtered (the total needs all of them; memory stays
   * one chunk plus the page).
   */
  async page(offset: number, limit: number, keep?: (r: ClusterRecording) => boolean): Promise<{ recordings: ClusterRecording[]; total: number }> {
    if (keep === undefined) {
      const [total, ids] = await Promise.all([this.redis.zcard(INDEX_KEY), this.redis.zrevrange(INDEX_KEY, offset, offset + limit - 1)]);
      return { recordings: await this.getMany(ids), total };
    }
    const recordings: ClusterRecording[] = [];
    let total = 0;
    // Pages by rank while recordings may be added at the top: an id seen in an earlier chunk is skipped.
    const seen = new Set<string>();
    for (let at = 0; ; at += SCAN_CHUNK) {
      const ids = await this.redis.zrevrange(INDEX_KEY, at, at + SCAN_CHUNK - 1);
      for (const r of await this.getMany(ids)) {
        if (seen.has(r.id)) continue;
        seen.add(r.id);
        if (!keep(r)) continue;
        if (total >= offset && recordings.length < limit) recordings.push(r);
        total++;
      }
      if (ids.length < SCAN_CHUNK) break;
    }
    return { recordings, total };
  }

  /**
   * Puts every recording of the state in the index (a state written before the index existed, or an
   * index lost); called at connect, a no-op when they agree.
   */
  private async reindex(): Promise<void> {
    const [inState, inIndex] = await Promise.all([this.redis.hlen(STATE_KEY), this.redis.zcard(INDEX_KEY)]);
    if (inIndex >= inState) return;
    const all = await this.redis.hgetall(STATE_KEY);
    const p = this.redis.pipeline();
    for (const [id, text] of Object.entries(all)) p.zadd(INDEX_KEY, 'NX', Date.parse((JSON.parse(text) as ClusterRecording).start), id);
    checkReplies(await p.exec());
    this.handlers.log('info', `cluster state: ${inState - inIndex} recording(s) added to the index`);
  }

  async forget(id: string): Promise<void> {
    checkReplies(await this.redis.multi().hdel(STATE_KEY, id).zrem(INDEX_KEY, id).del(OBJECTS_KEY + id).exec());
    this.indexed.delete(id);
  }

  /** Records where a file of part `part` of recording `id` is in S3. */
  async putObject(id: string, part: number, file: string, o: ClusterObject): Promise<void> {
    await this.redis.hset(OBJECTS_KEY + id, objectField(part, file), JSON.stringify(o));
  }

  /** The files in S3 of each recording in `ids` (one round trip), by objectField(). */
  async objects(ids: readonly string[]): Promise<Map<string, Map<string, ClusterObject>>> {
    const out = new Map<string, Map<string, ClusterObject>>();
    if (ids.length === 0) return out;
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(OBJECTS_KEY + id);
    const replies = (await p.exec()) ?? [];
    ids.forEach((id, i) => {
      const [err, value] = replies[i] ?? [null, {}];
      if (err !== null) throw err;
      const m = new Map<string, ClusterObject>();
      for (const [field, text] of Object.entries(value as Record<string, string>)) m.set(field, JSON.parse(text) as ClusterObject);
      out.set(id, m);
    });
    return out;
  }

  /** `always` targets stopped through the API (not recorded again until a daemon's configuration reload). */
  async stopTarget(name: string): Promise<void> {
    await this.redis.sadd(STOPPED_TARGETS_KEY, name);
  }

  async targetStopped(name: string): Promise<boolean> {
    return (await this.redis.sismember(STOPPED_TARGETS_KEY, name)) === 1;
  }

  async resumeTarget(name: string): Promise<void> {
    await this.redis.srem(STOPPED_TARGETS_KEY, name);
  }

  async publish(msg: ControlMessage): Promise<void> {
    await this.redis.publish(CONTROL_CHANNEL, JSON.stringify(msg));
  }

  /**
   * Stops taking jobs and waits for the running processors to return (the daemon stops or hands over
   * their recordings first), then disconnects.
   */
  async close(): Promise<void> {
    await this.worker?.close().catch(() => undefined);
    this.closed = true;
    await this.queue.close().catch(() => undefined);
    this.subscriber.disconnect();
    this.redis.disconnect();
    for (const r of this.owned) r.disconnect();
  }
}

/** Throws the first error of a MULTI or pipeline (ioredis resolves with per-command errors). */
function checkReplies(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('Redis transaction aborted');
  for (const [err] of replies) if (err !== null) throw err;
}

/** The Redis URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
