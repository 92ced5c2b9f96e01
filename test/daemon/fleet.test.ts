/**
 * The issue-14 cluster "fleet" on real processes, all sharing one set of servers: three `deskrec daemon`
 * binaries `a` `b` `c` (separate processes and storage roots, capacity 6 each, rotation every 6 s, every
 * finished segment going to S3 while it records), one redis-server, one OpenStack Swift with s3api, one
 * 320x240 Xvnc with a scrolling xterm and xclock, and eight fixture captures replayed at real speed
 * (test/helpers/servers/replay-rfb.ts, which counts its connections). Twelve recordings are started
 * round-robin through the three APIs (eight replays, the Xvnc four times), then the cluster is put through:
 * a stop through another daemon's API; steady recording, where the Redis and S3 traffic is measured for the
 * scaling estimate; S3 down (segments stay local, failures counted, nothing deleted) and back (everything
 * goes up); a Redis restart (no second recorder anywhere: no new connection to a replay server, no new
 * part, no second directory); a SIGKILL of the busiest daemon (its recordings continue elsewhere as new
 * parts of the same ids, one new connection per orphaned replay); and the end: every recording stopped
 * through the survivors, the killed daemon restarted with its home so what it left uploads, every MP4
 * object in the bucket downloaded and decoded by ffprobe, and one segment played and seeked in Chromium
 * through a daemon that did not record it. Measured times and traffic are printed, never asserted.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { expectTakenOver, grownAndPublishedSince, startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { decodedFrameCount, requireTool } from '../helpers/media';
import { startRedis, type RedisServer } from '../helpers/servers/redis';
import { useServerCleanup } from '../helpers/servers/registry';
import { startReplayRfb, type ReplayRfbServer } from '../helpers/servers/replay-rfb';
import { startS3, type S3Server } from '../helpers/servers/s3';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { seekInDaemonPlayer } from '../helpers/seek';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();

const FIXTURES = path.resolve(__dirname, '../../fixtures/vnc');
/**
 * Captures replayed. All fourteen replay cleanly under one daemon with its default options, with and
 * without `cursor: none` (a probe while writing this test: one connection each, no error, the MP4
 * decodes); taken are the xvnc ones but raw (large for nothing) and resize (it starts a segment of its
 * own), and two QEMU ones (720x400, heavier updates).
 */
const REPLAYED = ['xvnc-tight', 'xvnc-zrle', 'xvnc-hextile', 'xvnc-rre', 'xvnc-default', 'xvnc-cursor', 'qemu-tight', 'qemu-zrle'];
/** Where among the twelve POSTs the four live Xvnc recordings go (spread over the three APIs). */
const LIVE_AT = new Set([1, 5, 6, 10]);
const NAMES = ['a', 'b', 'c'];
const CAPACITY = 6;
const ROTATION_MIN = 0.1;
const BUCKET = 'recordings';
const PREFIX = 'fleet/';
const KEY_ENV = 'DESKREC_TEST_S3_KEY';
const SECRET_ENV = 'DESKREC_TEST_S3_SECRET';
/** The steady-recording window the traffic is measured over (at least; it ends at the next look after it). */
const MEASURE_MS = 20_000;

const notes: string[] = [];

afterAll(() => {
  process.stdout.write(`cluster fleet test:\n  ${notes.join('\n  ')}\n`);
});

/** One of the twelve recordings: its id, what it records, the API it was started through. */
interface Rec {
  id: string;
  label: string;
  via: string;
  replay: ReplayRfbServer | null;
}

/** A recording.json in a storage root: the fields the test reads. */
interface StoredMeta {
  id: string;
  state: string;
  dir: string;
  part?: number;
  segments?: { kind: string; file: string; frames: number }[];
}

/** The recording.json files under `root` (template {target}/{start}-{id}[-p<part>]), by recording id. */
function metasIn(root: string): Map<string, StoredMeta> {
  const out = new Map<string, StoredMeta>();
  if (!existsSync(root)) return out;
  for (const t of readdirSync(root, { withFileTypes: true })) {
    if (!t.isDirectory()) continue;
    for (const d of readdirSync(path.join(root, t.name), { withFileTypes: true })) {
      const file = path.join(root, t.name, d.name, 'recording.json');
      if (!d.isDirectory() || !existsSync(file)) continue;
      const m = JSON.parse(readFileSync(file, 'utf8')) as StoredMeta;
      out.set(m.id, { ...m, dir: path.join(t.name, d.name) });
    }
  }
  return out;
}

/** A metric's value from a daemon's /metrics (NaN when absent). */
async function metric(d: DaemonRun, name: string): Promise<number> {
  const text = String((await d.api('GET', '/metrics')).body);
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** `key:value` lines of an INFO reply. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** Calls per command from INFO commandstats (`cmdstat_evalsha:calls=12,usec=…`). */
function commandCalls(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of infoFields(text)) {
    const calls = /(?:^|,)calls=(\d+)/.exec(v);
    if (k.startsWith('cmdstat_') && calls !== null) out.set(k.slice('cmdstat_'.length), Number(calls[1]));
  }
  return out;
}

function running(r: ApiRecording): boolean {
  return r.state === 'recording';
}

describe('a fleet of three daemons on one Redis and one S3', () => {
  let redis: RedisServer;
  let s3: S3Server;
  let client: S3Client;
  let xvnc: XvncServer;
  let scratch: string;
  const replays: ReplayRfbServer[] = [];
  const daemons = new Map<string, DaemonRun>();
  const recs: Rec[] = [];
  /** Connections each replay server should have had by now (one per daemon that recorded it). */
  const expectedConnections = new Map<ReplayRfbServer, number>();
  /** The recording stopped in the first test (finished from then on). */
  let stoppedId = '';
  /** The daemon SIGKILLed, and its run (its home is reused by the restart). */
  let dead = '';
  let deadRun: DaemonRun | undefined;
  let orphans: string[] = [];

  const env = (): Record<string, string> => ({ [KEY_ENV]: s3.accessKey, [SECRET_ENV]: s3.secretKey });
  const config = (name: string): Record<string, unknown> => ({
    cluster: { redis: redis.url, name, capacity: CAPACITY },
    rotation: { minutes: ROTATION_MIN },
    storage: {
      s3: {
        endpoint: s3.endpoint, bucket: BUCKET, prefix: PREFIX, region: s3.region, 'access-key-env': KEY_ENV, 'secret-key-env': SECRET_ENV,
        // Quick retries: a store that comes back is used again within a second.
        retry: { 'min-delay': 0.2, 'max-delay': 1 },
      },
    },
  });

  function d(name: string): DaemonRun {
    const x = daemons.get(name);
    if (x === undefined) throw new Error(`no daemon ${name}`);
    return x;
  }
  const alive = (): string[] => [...daemons.keys()];
  const rec = (id: string): Rec => {
    const r = recs.find((x) => x.id === id);
    if (r === undefined) throw new Error(`no recording ${id}`);
    return r;
  };
  /** The recordings still running (all but the stopped one). */
  const live = (): string[] => recs.map((r) => r.id).filter((id) => id !== stoppedId);
  const list = async (via: string): Promise<ApiRecording[]> => ((await d(via).api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] }).recordings;

  /** Every object under PREFIX (ListObjectsV2, all pages). */
  async function objects(): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX, ...(token === undefined ? {} : { ContinuationToken: token }) }));
      for (const o of page.Contents ?? []) out.push({ key: o.Key ?? '', size: o.Size ?? 0 });
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  /** The S3 key of a segment listed in the cluster JSON: part 0's files under <id>/, part k's under <id>/p<k>/. */
  function keyOf(r: ApiRecording, s: ApiRecording['segments'][number]): string {
    // The JSON names each segment's part; the index of its daemon among the parts says the same here
    // (no daemon records a recording twice in this test).
    const part = s.part ?? (r.parts ?? []).findIndex((p) => p.daemon === s.daemon);
    return `${PREFIX}${r.id}/${part > 0 ? `p${part}/` : ''}${s.file}`;
  }

  async function redisInfo(section: string): Promise<string> {
    // A connection of its own per sample: it survives the Redis restart of a later test by not existing then.
    const c = new Redis(redis.url, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 1 });
    try {
      await c.connect();
      return await c.info(section);
    } finally {
      c.disconnect();
    }
  }

  /** Swift proxy log lines of S3 requests (the client-facing ones, not the proxy's own /v1/ subrequests). */
  function s3RequestLines(): string[] {
    const file = path.join(s3.dir, 'log', 'proxy.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((l) => / (GET|PUT|POST|HEAD|DELETE) \/\S+ HTTP\/1\.[01] \d{3} /.test(l) && !/ \/v1\/| \/auth\/| \/healthcheck /.test(l));
  }

  beforeAll(async () => {
    requireTool('ffprobe');
    scratch = mkdtempSync(path.join(tmpdir(), 'deskrec-fleet-'));
    [redis, s3] = await Promise.all([startRedis(), startS3()]);
    notes.push(`Swift start-up ${s3.startupMs} ms, Redis start-up ${redis.startupMs} ms`);
    await s3.createBucket(BUCKET);
    client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
    xvnc = await startXvnc({ width: 320, height: 240, security: 'None' });
    await startScrollingXterm(xvnc, { geometry: '30x8+4+4' });
    await startXclock(xvnc, { geometry: '90x90+220+20' });
    for (const f of REPLAYED) replays.push(await startReplayRfb(path.join(FIXTURES, `${f}.deskcap`), { end: 'hold' }));
    for (const name of NAMES) daemons.set(name, await startDaemon(config(name), { env: env() }));
  }, testTimeoutFor(2));

  afterAll(async () => {
    client?.destroy();
    for (const s of replays) s.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    await Promise.all([redis?.stop(), s3?.stop(), xvnc?.stop()]);
  });

  test('twelve recordings through the three APIs: each taken by exactly one daemon, all listed everywhere; a stop through another daemon', async () => {
    let replayIndex = 0;
    for (let i = 0; i < 12; i++) {
      const via = NAMES[i % 3] ?? 'a';
      const replay = LIVE_AT.has(i) ? null : replays[replayIndex++] ?? null;
      const url = `vnc://127.0.0.1:${replay?.port ?? xvnc.port}`;
      const res = await d(via).api('POST', '/recordings', { url, options: { format: 'mp4', cursor: 'none' } });
      expect({ url, status: res.status }).toEqual({ url, status: 201 });
      const label = replay === null ? 'xvnc' : REPLAYED[replayIndex - 1] ?? '?';
      recs.push({ id: (res.body as ApiRecording).id, label, via, replay });
      if (replay !== null) expectedConnections.set(replay, 1);
    }
    const t0 = Date.now();
    const all = await d('c').waitForList('the twelve recordings recording, each with frames', (rs) => recs.every((x) => {
      const r = rs.find((y) => y.id === x.id);
      return r !== undefined && running(r) && (r.segments[0]?.frames ?? 0) > 0;
    }), 90_000);
    notes.push(`12 recordings recording with frames ${Date.now() - t0} ms after the last POST`);
    const perDaemon = new Map<string, number>();
    const roots = new Map(NAMES.map((n) => [n, metasIn(d(n).root)]));
    for (const x of recs) {
      const r = all.find((y) => y.id === x.id);
      expect(r?.daemon).toMatch(/^[abc]$/);
      expect(r?.parts?.map((p) => p.daemon)).toEqual([r?.daemon]);
      perDaemon.set(r?.daemon ?? '', (perDaemon.get(r?.daemon ?? '') ?? 0) + 1);
      // Its directory lies in exactly one root: the one of the daemon the API names.
      expect({ id: x.id, holders: NAMES.filter((n) => roots.get(n)?.has(x.id) === true) }).toEqual({ id: x.id, holders: [r?.daemon] });
    }
    notes.push(`recordings per daemon: ${NAMES.map((n) => `${n} ${perDaemon.get(n) ?? 0}`).join(', ')}`);
    expect([...perDaemon.values()].every((k) => k <= CAPACITY)).toBe(true);
    // Each replay server was connected to once: one recorder per recording.
    for (const [s, n] of expectedConnections) expect(s.connections()).toBe(n);
    // Every daemon's API lists all twelve.
    for (const n of NAMES) {
      const rs = await list(n);
      expect({ daemon: n, missing: recs.filter((x) => !rs.some((r) => r.id === x.id)).map((x) => x.id) }).toEqual({ daemon: n, missing: [] });
    }

    // A replayed recording stopped through a daemon that does not record it, seen done by the third.
    const victim = all.find((r) => r.id === recs.find((x) => x.replay !== null)?.id);
    if (victim === undefined) throw new Error('no replayed recording');
    const owner = victim.daemon ?? '';
    const via = NAMES.find((n) => n !== owner) ?? 'a';
    const third = NAMES.find((n) => n !== owner && n !== via) ?? 'a';
    const res = await d(via).api('DELETE', `/recordings/${victim.id}`);
    expect(res.status).toBe(200);
    expect((res.body as ApiRecording).state).toBe('done');
    const seen = await d(third).waitForRecording(victim.id, 'done, as the third daemon sees it', (r) => r.state === 'done');
    expect(seen.daemon).toBe(owner);
    expect(seen.segments.filter((s) => s.kind === 'mp4').length).toBeGreaterThan(0);
    expect(metasIn(d(owner).root).get(victim.id)?.state).toBe('done');
    stoppedId = victim.id;
  }, testTimeoutFor(4));

  test('steady recording: finished segments go to S3 while recording; the Redis and S3 traffic measured', async () => {
    const sample = async (): Promise<{ t: number; stats: Map<string, string>; calls: Map<string, number>; s3Lines: number; uploadedBytes: number; uploads: number }> => {
      const t = Date.now();
      const stats = infoFields(await redisInfo('stats'));
      const calls = commandCalls(await redisInfo('commandstats'));
      let uploadedBytes = 0;
      let uploads = 0;
      for (const n of alive()) {
        uploadedBytes += await metric(d(n), 'deskrec_uploaded_bytes_total');
        uploads += await metric(d(n), 'deskrec_uploads_total');
      }
      return { t, stats, calls, s3Lines: s3RequestLines().length, uploadedBytes, uploads };
    };
    const before = await list('a');
    const segsAt = new Map(before.map((r) => [r.id, r.segments.length]));
    const a = await sample();
    // No API calls until the window is over (each list is Redis traffic of the test's own).
    let looks = 0;
    const after = await waitFor(`${MEASURE_MS} ms of recording, every recording 3 segments further, the older ones in S3`, async () => {
      if (Date.now() - a.t < MEASURE_MS) return undefined;
      looks++;
      const rs = await list('b');
      return live().every((id) => {
        const r = rs.find((x) => x.id === id);
        const k = segsAt.get(id) ?? 0;
        // Segments that had finished when the window began went up while the recording went on.
        return r !== undefined && running(r) && r.segments.length >= k + 3 && r.segments.slice(0, Math.max(0, k - 1)).every((s) => s.location === 's3');
      }) ? rs : undefined;
    }, { timeoutMs: MEASURE_MS + 40_000, intervalMs: 1000 });
    const b = await sample();
    for (const id of live()) expect(after.find((r) => r.id === id)?.segments.some((s) => s.location === 's3')).toBe(true);

    const secs = (b.t - a.t) / 1000;
    const n = live().length;
    const ops = Number(b.stats.get('total_commands_processed')) - Number(a.stats.get('total_commands_processed'));
    const opsPerS = ops / secs;
    notes.push(`traffic over ${secs.toFixed(1)} s of steady recording, ${n} recordings on ${alive().length} daemons (rotation ${ROTATION_MIN * 60} s; ${looks} list call(s) of the test's own at the end):`);
    notes.push(`  Redis: ${opsPerS.toFixed(1)} ops/s in all = ${(opsPerS / n).toFixed(2)} ops/s per recording, ${(opsPerS / alive().length).toFixed(1)} ops/s per daemon`);
    const perCmd = [...b.calls].map(([cmd, calls]) => ({ cmd, rate: (calls - (a.calls.get(cmd) ?? 0)) / secs })).filter((x) => x.rate > 0).sort((x, y) => y.rate - x.rate);
    notes.push(`  Redis per command (calls/s, sum ${perCmd.reduce((t, x) => t + x.rate, 0).toFixed(1)}): ${perCmd.slice(0, 14).map((x) => `${x.cmd} ${x.rate.toFixed(2)}`).join(', ')}`);
    notes.push(`  Redis network: in ${((Number(b.stats.get('total_net_input_bytes')) - Number(a.stats.get('total_net_input_bytes'))) / secs / 1024).toFixed(1)} KiB/s, out ${((Number(b.stats.get('total_net_output_bytes')) - Number(a.stats.get('total_net_output_bytes'))) / secs / 1024).toFixed(1)} KiB/s`);
    const recMinutes = (n * secs) / 60;
    const s3Requests = b.s3Lines - a.s3Lines;
    const files = b.uploads - a.uploads;
    notes.push(`  S3: ${s3Requests} requests (Swift proxy log) = ${(s3Requests / recMinutes).toFixed(1)} per recorded minute per recording; ${files} files verified up = ${(s3Requests / Math.max(1, files)).toFixed(2)} requests per file (one file per segment: the rate scales with 1/rotation)`);
    notes.push(`  S3 upload: ${((b.uploadedBytes - a.uploadedBytes) / 1e6 / (secs / 60)).toFixed(2)} MB per minute in all = ${((b.uploadedBytes - a.uploadedBytes) / 1e6 / recMinutes).toFixed(3)} MB per recorded minute per recording`);
    const methods = new Map<string, number>();
    for (const l of s3RequestLines().slice(a.s3Lines, b.s3Lines)) {
      const m = / (GET|PUT|POST|HEAD|DELETE) /.exec(l)?.[1] ?? '?';
      methods.set(m, (methods.get(m) ?? 0) + 1);
    }
    notes.push(`  S3 requests by method: ${[...methods].map(([m, k]) => `${m} ${k}`).join(', ')}`);
    expect(ops).toBeGreaterThan(0);
    expect(s3Requests).toBeGreaterThan(0);
  }, testTimeoutFor(2, MEASURE_MS + 60_000));

  test('S3 down: finished segments stay on the local disk, failures counted, a backlog, nothing deleted; S3 back: everything goes up', async () => {
    const keysBefore = (await objects()).map((o) => o.key);
    let failedBefore = 0;
    for (const n of alive()) failedBefore += await metric(d(n), 'deskrec_uploads_failed_total');
    await s3.down();
    let upAgain = false;
    try {
      const atDown = await list('a');
      const segsAt = new Map(atDown.map((r) => [r.id, r.segments.length]));
      const during = await d('a').waitForList('two more segments of every recording with S3 down', (rs) => live().every((id) => {
        const r = rs.find((x) => x.id === id);
        return r !== undefined && running(r) && r.segments.length >= (segsAt.get(id) ?? 0) + 2;
      }), 60_000);
      // The segments that finished while S3 was down: on the local disk, in the recording daemon's root.
      // The list seen after down() is at most a publish interval (1 s) old, so the segments after the ones
      // it shows began after it and ended (a rotation, 6 s) with S3 down; the one it shows last may have
      // ended just before down() and gone up, so it is not counted.
      const finishedDuringDown: { id: string; key: string; daemon: string; dir: string; file: string }[] = [];
      for (const id of live()) {
        const r = during.find((x) => x.id === id);
        if (r === undefined) throw new Error(`lost ${id}`);
        for (const s of r.segments.slice(segsAt.get(id) ?? 0, -1)) {
          expect({ id, file: s.file, location: s.location }).toEqual({ id, file: s.file, location: 'local' });
          expect({ id, file: s.file, exists: existsSync(path.join(d(r.daemon ?? '').root, r.dir, s.file)) }).toEqual({ id, file: s.file, exists: true });
          finishedDuringDown.push({ id, key: keyOf(r, s), daemon: r.daemon ?? '', dir: r.dir, file: s.file });
        }
        // Nothing listed before is gone.
        const was = atDown.find((x) => x.id === id)?.segments.map((s) => s.file) ?? [];
        expect(r.segments.slice(0, was.length).map((s) => s.file)).toEqual(was);
      }
      let backlog = 0;
      let failed = 0;
      await waitFor('a backlog and failed uploads in the metrics', async () => {
        backlog = 0;
        failed = 0;
        for (const n of alive()) {
          backlog += await metric(d(n), 'deskrec_upload_backlog_bytes');
          failed += await metric(d(n), 'deskrec_uploads_failed_total');
        }
        return backlog > 0 && failed > failedBefore ? true : undefined;
      }, { detail: () => `backlog ${backlog}, failed ${failed} (before: ${failedBefore})` });
      notes.push(`S3 down for ${finishedDuringDown.length} finished segments: backlog ${backlog} bytes, ${failed - failedBefore} failed upload attempts`);

      /** The recording daemon's last log line about the file's upload, for the failure's detail. */
      const lastUploadLog = (f: { id: string; daemon: string; file: string }): string => {
        const l = d(f.daemon).logs().filter((x) => x.recording === f.id && x.file === f.file).at(-1);
        return l === undefined ? 'nothing logged about it' : `last log: ${JSON.stringify(l)}`;
      };
      const t0 = Date.now();
      await s3.up();
      upAgain = true;
      const upAt = Date.now();
      let notYet: string[] = [];
      await waitFor('the segments finished while S3 was down in S3', async () => {
        const rs = await list('b');
        notYet = finishedDuringDown.filter((f) => rs.find((x) => x.id === f.id)?.segments.find((s) => s.file === f.file && s.daemon === f.daemon)?.location !== 's3')
          .map((f) => `${f.key} (${existsSync(path.join(d(f.daemon).root, f.dir, f.file)) ? 'still' : 'no longer'} on ${f.daemon}'s disk; ${lastUploadLog(f)})`);
        return notYet.length === 0 ? true : undefined;
        // Two minutes: an upload whose connection was accepted while the store came back but never answered
        // costs the daemon two attempts of its 30 s request timeout (src/daemon/s3-store.ts) before its own
        // retry, so a single hung request alone takes over a minute.
      }, { timeoutMs: 120_000, intervalMs: 500, detail: () => `${notYet.join(', ')}\n--- Swift proxy log:\n${s3.logTail('proxy', 12)}` });
      notes.push(`S3 back: up() took ${upAt - t0} ms; the backlog in S3 ${Date.now() - upAt} ms later`);
      // Each daemon's backlog reaches 0 (between two rotations: the segment just finished goes up too).
      for (const n of alive()) {
        await waitFor(`daemon ${n}'s upload backlog to reach 0`, async () => ((await metric(d(n), 'deskrec_upload_backlog_bytes')) === 0 ? true : undefined), { intervalMs: 50 });
      }
      const keysAfter = new Set((await objects()).map((o) => o.key));
      expect(keysBefore.filter((k) => !keysAfter.has(k))).toEqual([]);
      expect(finishedDuringDown.filter((f) => !keysAfter.has(f.key)).map((f) => f.key)).toEqual([]);
    } finally {
      if (!upAgain) await s3.up();
    }
  }, testTimeoutFor(6));

  test('Redis restarted mid-run: the recordings go on where they are, no second recorder anywhere', async () => {
    const before = (await list('a')).filter((r) => live().includes(r.id));
    expect(before.every(running)).toBe(true);
    const t0 = Date.now();
    await redis.restart();
    const back = Date.now();
    notes.push(`Redis restart took ${back - t0} ms`);
    const after = await d('b').waitForList('every recording to grow and publish after the Redis restart', (rs) => grownAndPublishedSince(before, rs, back), 60_000);
    notes.push(`every recording published again ${Date.now() - back} ms after Redis was back`);
    const roots = new Map(NAMES.map((n) => [n, metasIn(d(n).root)]));
    for (const b of before) {
      const r = after.find((x) => x.id === b.id);
      expect({ id: b.id, daemon: r?.daemon, parts: r?.parts?.length }).toEqual({ id: b.id, daemon: b.daemon, parts: 1 });
      expect({ id: b.id, holders: NAMES.filter((n) => roots.get(n)?.has(b.id) === true) }).toEqual({ id: b.id, holders: [b.daemon] });
    }
    // No daemon connected to a replay server again.
    for (const [s, n] of expectedConnections) expect(s.connections()).toBe(n);
    for (const n of NAMES) expect(d(n).logs().some((l) => String(l.msg).includes('lost the cluster lock'))).toBe(false);
  }, testTimeoutFor(2));

  test('SIGKILL of the busiest daemon: its recordings continue on the others as new parts of the same ids', async () => {
    const before = (await list('a')).filter((r) => live().includes(r.id));
    const counts = NAMES.map((n) => ({ n, k: before.filter((r) => r.daemon === n).length })).sort((x, y) => y.k - x.k);
    dead = counts[0]?.n ?? 'a';
    deadRun = d(dead);
    orphans = before.filter((r) => r.daemon === dead).map((r) => r.id);
    expect(orphans.length).toBeGreaterThan(0);
    const orphanReplays = orphans.map((id) => rec(id).replay).filter((s): s is ReplayRfbServer => s !== null);
    const survivor = NAMES.find((n) => n !== dead) ?? 'a';
    const t0 = Date.now();
    expect(await deadRun.signal('SIGKILL')).toBeNull();
    daemons.delete(dead);
    const after = await d(survivor).waitForList(`the recordings of ${dead} (${orphans.join(', ')}) recording again elsewhere`, (rs) => orphans.every((id) => {
      const r = rs.find((x) => x.id === id);
      return r !== undefined && running(r) && r.daemon !== dead && r.segments.some((s) => s.daemon === r.daemon && s.frames > 0);
    }), 60_000);
    notes.push(`SIGKILL of daemon ${dead} (${orphans.length} recordings: ${orphans.map((id) => rec(id).label).join(', ')}): all recording again elsewhere with frames ${Date.now() - t0} ms after the kill (target: 10 s)`);
    const gaps: string[] = [];
    for (const id of orphans) {
      const r = after.find((x) => x.id === id);
      const { oldSegs, newSegs } = expectTakenOver(r, dead);
      const oldEnd = Math.max(...oldSegs.map((s) => s.start_ms + s.duration_ms));
      const newStart = Math.min(...newSegs.map((s) => s.start_ms));
      // Two views of the gap: wall clock from the killed daemon's last publish (the old part's end in the
      // JSON) to the new part's start, and the recording's clock from the end of the old part's last listed
      // frame to the new part's first (a still replay's segment lasts one frame: that gap reads longer).
      const wall = Date.parse(r?.parts?.[1]?.start ?? '') - Date.parse(r?.parts?.[0]?.end ?? '');
      gaps.push(`${rec(id).label} ${(wall / 1000).toFixed(1)} s wall / ${((newStart - oldEnd) / 1000).toFixed(1)} s on the clock`);
      expect({ id, holders: alive().filter((n) => metasIn(d(n).root).has(id)) }).toEqual({ id, holders: [r?.daemon] });
    }
    notes.push(`gap between the parts (old part's last publish → new part's start; end of the old part's last listed frame → the new part's first frame): ${gaps.join(', ')}`);
    // Each orphaned replay server got exactly one new connection (its capture replayed from the start), the others none.
    for (const s of orphanReplays) expectedConnections.set(s, (expectedConnections.get(s) ?? 0) + 1);
    await waitFor('each orphaned replay server connected to once more', () => (orphanReplays.every((s) => s.connections() >= (expectedConnections.get(s) ?? 0)) ? true : undefined));
    for (const [s, n] of expectedConnections) expect(s.connections()).toBe(n);
  }, testTimeoutFor(3));

  test('the end: everything stopped through the survivors, the killed daemon restarted uploads what it left, every MP4 in S3 plays, Chromium seeks one through a daemon that did not record it', async () => {
    if (deadRun === undefined) throw new Error('no daemon was killed');
    const survivors = alive();
    // Stop every running recording, alternating between the survivors' APIs.
    const stopped = await Promise.all(live().map(async (id, i) => {
      const res = await d(survivors[i % survivors.length] ?? 'a').api('DELETE', `/recordings/${id}`);
      return { id, status: res.status, state: (res.body as ApiRecording).state };
    }));
    expect(stopped.filter((x) => x.status !== 200 || x.state !== 'done')).toEqual([]);
    // No recorder connected again after the stops.
    for (const [s, n] of expectedConnections) expect(s.connections()).toBe(n);

    // The killed daemon's in-progress segments and the finished ones not yet verified in S3 wait in its root.
    const left = metasIn(deadRun.root);
    const t0 = Date.now();
    const restarted = await startDaemon(config(dead), { home: deadRun.home, env: env() });
    daemons.set(dead, restarted);
    const recovered = await waitFor(`the restarted ${dead} to mark its parts interrupted`, () => {
      const m = metasIn(restarted.root);
      return orphans.every((id) => m.get(id)?.state === 'interrupted') ? m : undefined;
    });

    // What S3 must end up with: every MP4 segment the cluster lists, and any the killed daemon finished
    // after its last publish. Its in-progress segment is expected only if the restart finished it with frames.
    const cluster = await d(survivors[0] ?? 'a').waitForList('every recording done', (rs) => recs.every((x) => rs.find((r) => r.id === x.id)?.state === 'done'));
    const recordedMinutes = cluster.filter((r) => recs.some((x) => x.id === r.id))
      .reduce((m, r) => m + r.segments.filter((s) => s.kind === 'mp4').reduce((t, s) => t + s.duration_ms, 0), 0) / 60_000;
    const expected = new Map<string, { id: string; file: string; frames: number | null }>();
    const inProgress: string[] = [];
    for (const x of recs) {
      const r = cluster.find((y) => y.id === x.id);
      if (r === undefined) throw new Error(`lost ${x.id}`);
      const mp4 = r.segments.filter((s) => s.kind === 'mp4');
      const lastDead = orphans.includes(x.id) ? mp4.filter((s) => s.daemon === dead).pop() : undefined;
      for (const s of mp4) {
        if (s === lastDead) continue;
        expected.set(keyOf(r, s), { id: x.id, file: s.file, frames: s.frames });
      }
      if (lastDead === undefined) continue;
      const mine = recovered.get(x.id)?.segments?.filter((s) => s.kind === 'mp4') ?? [];
      const fin = mine.find((s) => s.file === lastDead.file);
      inProgress.push(`${x.label} ${lastDead.file}: ${lastDead.frames} frames when last published, ${fin === undefined ? 'not kept by the restart' : `${fin.frames} frames after the restart finished it`}`);
      if (fin !== undefined && fin.frames > 0) expected.set(keyOf(r, lastDead), { id: x.id, file: lastDead.file, frames: null });
      // Segments the killed daemon finished after its last publish (rotation in its last second).
      for (const s of mine) {
        if (!mp4.some((y) => y.daemon === dead && y.file === s.file)) {
          expected.set(`${PREFIX}${x.id}/${s.file}`, { id: x.id, file: s.file, frames: null });
          inProgress.push(`${x.label} ${s.file}: finished after the last publish, ${s.frames} frames`);
        }
      }
    }
    notes.push(`the killed daemon's in-progress segments: ${inProgress.join('; ')}`);
    expect(left.size).toBeGreaterThanOrEqual(orphans.length);
    let missing: string[] = [];
    const listing = await waitFor('every expected MP4 segment in S3', async () => {
      const objs = await objects();
      const keys = new Set(objs.map((o) => o.key));
      missing = [...expected.keys()].filter((k) => !keys.has(k));
      return missing.length === 0 ? objs : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, detail: () => missing.join(', ') });
    notes.push(`all ${expected.size} MP4 segments of the 12 recordings in S3 ${Date.now() - t0} ms after the killed daemon's restart`);
    const uploadedByRestart = restarted.logs().filter((l) => String(l.msg).startsWith('uploaded')).length;
    notes.push(`the restarted daemon uploaded ${uploadedByRestart} file(s) its killed run had left`);

    // Every MP4 object, downloaded through S3 and decoded by ffprobe.
    const mp4s = listing.filter((o) => o.key.endsWith('.mp4'));
    // The cluster JSON, merged with the cluster's record of S3 objects, lists every one of them as in S3,
    // the killed daemon's last segments with the frame counts its restart finished them with.
    let unlisted: string[] = [];
    const finalList = await d(survivors[0] ?? 'a').waitForList('the cluster JSON to list every MP4 object as in S3', (rs) => {
      const byKey = new Map(rs.flatMap((r) => r.segments.filter((s) => s.kind === 'mp4').map((s) => [keyOf(r, s), s] as const)));
      unlisted = mp4s.filter((o) => byKey.get(o.key)?.location !== 's3').map((o) => o.key);
      return unlisted.length === 0;
    }, 60_000).catch((err: unknown) => { throw new Error(`${String(err)}; not listed as in S3: ${unlisted.join(', ')}`); });
    const listedFrames = new Map(finalList.flatMap((r) => r.segments.filter((s) => s.kind === 'mp4').map((s) => [keyOf(r, s), s.frames] as const)));
    const t1 = Date.now();
    let totalBytes = 0;
    for (const o of mp4s) {
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.key }));
      const body = Buffer.from(await got.Body?.transformToByteArray() ?? []);
      expect({ key: o.key, bytes: body.length }).toEqual({ key: o.key, bytes: o.size });
      totalBytes += body.length;
      const file = path.join(scratch, o.key.replace(/\//g, '_'));
      writeFileSync(file, body);
      const frames = decodedFrameCount(file);
      expect({ key: o.key, decodes: frames > 0 }).toEqual({ key: o.key, decodes: true });
      expect({ key: o.key, frames }).toEqual({ key: o.key, frames: listedFrames.get(o.key) });
      rmSync(file);
    }
    notes.push(`${mp4s.length} MP4 objects (${(totalBytes / 1e6).toFixed(1)} MB) downloaded and decoded in ${Date.now() - t1} ms; ${(totalBytes / 1e6 / recordedMinutes).toFixed(3)} MB per recorded minute per recording over the whole run`);

    // One live segment in S3, through the API and the player of a daemon that recorded no part of it.
    const liveRec = cluster.filter((r) => rec(r.id).label === 'xvnc').map((r) => ({ r, viewer: alive().find((n) => !(r.parts ?? []).some((p) => p.daemon === n)) }))
      .find((x) => x.viewer !== undefined);
    if (liveRec === undefined || liveRec.viewer === undefined) throw new Error('no daemon outside a live recording\'s parts');
    const { r } = liveRec;
    const viewer = d(liveRec.viewer);
    const videos = r.segments.filter((s) => s.kind === 'mp4');
    const n = videos.findIndex((s, i) => i > 0 && s.frames >= 10 && expected.get(keyOf(r, s))?.frames === s.frames);
    const seg = videos[n];
    if (seg === undefined) throw new Error(`no segment with frames in ${r.id}`);
    notes.push(`segment ${n} of ${r.id} (recorded by ${seg.daemon ?? '?'}) served by ${liveRec.viewer}`);
    const objectBytes = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: keyOf(r, seg) }))).Body?.transformToByteArray() ?? []);
    const whole = await fetch(`${viewer.base}/recordings/${r.id}/segments/${n}`, { headers: { authorization: `Bearer ${viewer.token}` } });
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(objectBytes)).toBe(true);
    const at = await seekInDaemonPlayer(viewer.base, viewer.token, r.id, n);
    expect(at.duration).toBeCloseTo(seg.duration_ms / 1000, 1);
    expect(at.t).toBeCloseTo(at.target, 1);
    expect(at.videoWidth).toBe(seg.width);
  }, testTimeoutFor(6));
});
