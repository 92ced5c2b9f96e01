/**
 * Cluster mode (issue 14, the work-distribution half) on real processes: `deskrec daemon` binaries with
 * separate storage roots, one real redis-server (test/helpers/servers/redis.ts) and, for the S3 case,
 * OpenStack Swift's s3api (test/helpers/servers/s3.ts). Checked: the cluster section is validated with its
 * paths; a Redis that may evict keys is refused at start (exit 2, one clear line, nothing created);
 * recordings started through any daemon's API are each taken by exactly one daemon (one directory in one
 * root), within each daemon's capacity, and an `always` target configured on all three is recorded by
 * exactly one; every daemon lists them all; a stop through another daemon's API reaches the recording
 * daemon, and a delete of the files reaches the daemon that has them; a Redis restart leaves every
 * recording where it was (no second recorder, no new part); a SIGKILLed daemon's recordings continue on
 * the others as a new part of the same recording id, and a SIGTERMed one hands its recordings over; a
 * recording still waiting in the queue is removed by a stop; with S3, each part's files go under their
 * own keys below the recording id. Measured times are printed, never asserted (each wait has a generous
 * bound).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { Cluster, type ClusterRecording } from '../../src/daemon/cluster';
import { parseConfig } from '../../src/daemon/config';
import { UsageError } from '../../src/errors';
import { expectTakenOver, grownAndPublishedSince, startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { startRedis, type RedisServer } from '../helpers/servers/redis';
import { useServerCleanup } from '../helpers/servers/registry';
import { startS3 } from '../helpers/servers/s3';
import { thrown } from '../helpers/thrown';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const URL_A = 'test://desktop?size=320x200';
const CAPACITY = 3;
const notes: string[] = [];

afterAll(() => {
  process.stdout.write(`cluster daemon tests:\n  ${notes.join('\n  ')}\n`);
});

/** The recording ids whose directories lie in `root` (template {target}/{start}-{id}[-p<part>]). */
function idsIn(root: string): string[] {
  const out: string[] = [];
  if (!existsSync(root)) return out;
  for (const t of readdirSync(root, { withFileTypes: true })) {
    if (!t.isDirectory()) continue;
    for (const d of readdirSync(path.join(root, t.name), { withFileTypes: true })) {
      const file = path.join(root, t.name, d.name, 'recording.json');
      if (d.isDirectory() && existsSync(file)) out.push((JSON.parse(readFileSync(file, 'utf8')) as { id: string }).id);
    }
  }
  return out;
}

function running(r: ApiRecording): boolean {
  return r.state === 'recording';
}

describe('cluster mode', () => {
  test('configuration: the cluster section is validated with the rest, mistakes named by their path', () => {
    const base = 'storage: {root: /tmp/deskrec-x}\napi: {token-file: /tmp/deskrec-token}\n';
    const c = parseConfig(`${base}cluster: {redis: "redis://127.0.0.1:6379"}`, '/');
    expect(c.cluster).toEqual({ redis: 'redis://127.0.0.1:6379', capacity: 8 });
    const e = thrown(UsageError, () => parseConfig(`${base}cluster: {redis: "http://127.0.0.1:6379", name: "bad name", capacity: 0, extra: 1}`, '/'));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(/cluster\.redis: must be redis:\/\/ or rediss:\/\//);
    expect(e.message).toMatch(/cluster\.name: must be 1-128/);
    expect(e.message).toMatch(/cluster\.capacity: /);
    expect(e.message).toMatch(/cluster: .*extra/);
  });

  test('a Redis whose maxmemory-policy may evict keys is refused at start (exit 2)', async () => {
    const redis = await startRedis({ maxmemoryPolicy: 'allkeys-lru' });
    const home = mkdtempSync(path.join(tmpdir(), 'deskrec-cluster-'));
    try {
      writeFileSync(path.join(home, 'token'), 'a-token-of-sixteen-or-more-characters\n', { mode: 0o600 });
      writeFileSync(path.join(home, 'config.yaml'), JSON.stringify({
        storage: { root: path.join(home, 'rec'), 'min-free': '1MiB' },
        api: { listen: '127.0.0.1:0', 'token-file': path.join(home, 'token') },
        cluster: { redis: redis.url, name: 'lru' },
      }));
      const r = spawnSync(process.execPath, [BIN, 'daemon', '--config', path.join(home, 'config.yaml')], { encoding: 'utf8', timeout: 60000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/maxmemory-policy 'allkeys-lru'.*noeviction/);
      // Refused before anything was touched: no storage root.
      expect(existsSync(path.join(home, 'rec'))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
      await redis.stop();
    }
  }, 90000);

  describe('three daemons on one Redis', () => {
    let redis: RedisServer;
    const daemons = new Map<string, DaemonRun>();

    beforeAll(async () => {
      redis = await startRedis();
      for (const name of ['a', 'b', 'c']) {
        daemons.set(name, await startDaemon({
          cluster: { redis: redis.url, name, capacity: CAPACITY },
          targets: [{ name: 'keeper', url: 'test://desktop?size=160x120', mode: 'always', 'fps-max': 5 }],
        }));
      }
    }, 120000);

    afterAll(async () => {
      await redis?.stop();
    });

    function d(name: string): DaemonRun {
      const x = daemons.get(name);
      if (x === undefined) throw new Error(`no daemon ${name}`);
      return x;
    }

    const ids: string[] = [];
    let stopped: { id: string; owner: string; via: string } | null = null;

    test('recordings started through any daemon are each taken by exactly one; every daemon lists them all', async () => {
      for (const name of ['a', 'b', 'c', 'a', 'b', 'c']) {
        const res = await d(name).api('POST', '/recordings', { url: URL_A, options: { 'fps-max': 10 } });
        expect(res.status).toBe(201);
        const r = res.body as ApiRecording;
        expect(r.state).toBe('starting');
        ids.push(r.id);
      }
      const t0 = Date.now();
      const all = await d('c').waitForList('6 API recordings and the always target recording', (rs) => {
        const api = rs.filter((r) => ids.includes(r.id));
        const keeper = rs.filter((r) => r.target === 'keeper' && running(r));
        return api.length === 6 && api.every(running) && keeper.length === 1;
      });
      notes.push(`7 recordings running on the cluster ${Date.now() - t0} ms after the last POST`);
      const recorders = new Map<string, number>();
      for (const r of all.filter((x) => running(x))) {
        expect(r.daemon).toMatch(/^[abc]$/);
        expect(r.parts?.map((p) => p.daemon)).toEqual([r.daemon]);
        recorders.set(r.daemon ?? '', (recorders.get(r.daemon ?? '') ?? 0) + 1);
      }
      // 7 jobs and at most CAPACITY per daemon: all three daemons record.
      expect([...recorders.values()].every((n) => n <= CAPACITY)).toBe(true);
      expect(recorders.size).toBe(3);
      // Exactly one directory per recording across the three roots, in the root of the daemon named.
      const byRoot = new Map(['a', 'b', 'c'].map((n) => [n, idsIn(d(n).root)]));
      for (const r of all.filter((x) => running(x))) {
        const holders = [...byRoot].filter(([, list]) => list.includes(r.id)).map(([n]) => n);
        expect(holders).toEqual([r.daemon]);
      }
      // Every daemon's API shows the same set.
      for (const n of ['a', 'b']) {
        const list = await d(n).waitForList(`daemon ${n} to list the 6 recordings`, (rs) => ids.every((id) => rs.some((r) => r.id === id)));
        expect(list.length).toBe(all.length);
      }
      const one = await d('a').api('GET', `/recordings/${ids[4] ?? ''}`);
      expect(one.status).toBe(200);
      expect((one.body as ApiRecording).id).toBe(ids[4]);
    }, testTimeoutFor(4));

    test('the list is paged from the cluster\'s index, newest first, filters applied; a lost index is rebuilt at a daemon\'s start', async () => {
      type Page = { recordings: ApiRecording[]; total: number };
      const all = (await d('b').api('GET', '/recordings?limit=1000')).body as Page;
      expect(all.total).toBe(all.recordings.length);
      expect(all.total).toBeGreaterThanOrEqual(7);
      const starts = all.recordings.map((r) => Date.parse(r.start));
      expect(starts).toEqual([...starts].sort((x, y) => y - x));
      const page = (await d('c').api('GET', '/recordings?offset=2&limit=3')).body as Page;
      expect(page.total).toBe(all.total);
      expect(page.recordings.map((r) => r.id)).toEqual(all.recordings.slice(2, 5).map((r) => r.id));
      const keeper = (await d('a').api('GET', '/recordings?target=keeper&limit=1')).body as Page;
      expect(keeper.recordings.map((r) => r.target)).toEqual(['keeper']);
      expect(keeper.total).toBe(all.recordings.filter((r) => r.target === 'keeper').length);
      const probe = new Redis(redis.url);
      try {
        await probe.del('deskrec:index');
        const e = await startDaemon({ cluster: { redis: redis.url, name: 'e', capacity: 1 } });
        const again = (await e.api('GET', '/recordings?limit=1000')).body as Page;
        expect(again.recordings.map((r) => r.id)).toEqual(all.recordings.map((r) => r.id));
        expect(e.logs().some((l) => /added to the index/.test(String(l.msg)))).toBe(true);
        expect(await e.signal('SIGTERM')).toBe(0);
      } finally {
        probe.disconnect();
      }
    }, testTimeoutFor(2));

    test('a stop through another daemon\'s API reaches the daemon that records it', async () => {
      const list = (await d('a').api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] };
      const victim = list.recordings.find((r) => ids.includes(r.id) && running(r));
      expect(victim).toBeDefined();
      const owner = victim?.daemon ?? '';
      const via = ['a', 'b', 'c'].find((n) => n !== owner) ?? 'a';
      const res = await d(via).api('DELETE', `/recordings/${victim?.id ?? ''}`);
      expect(res.status).toBe(200);
      expect((res.body as ApiRecording).state).toBe('done');
      // The recording daemon finished it: its own recording.json says done, and a third daemon lists it done.
      const third = ['a', 'b', 'c'].find((n) => n !== owner && n !== via) ?? 'a';
      const seen = await d(third).waitForRecording(victim?.id ?? '', 'done', (r) => r.state === 'done');
      expect(seen.daemon).toBe(owner);
      expect(seen.segments.filter((s) => s.kind === 'mp4').length).toBeGreaterThan(0);
      expect(idsIn(d(owner).root)).toContain(victim?.id);
      const dirs = readdirSync(path.join(d(owner).root, 'api')).filter((x) => x.endsWith(victim?.id ?? '-'));
      expect(dirs.length).toBe(1);
      const meta = JSON.parse(readFileSync(path.join(d(owner).root, 'api', dirs[0] ?? '', 'recording.json'), 'utf8')) as { state: string };
      expect(meta.state).toBe('done');
      ids.splice(ids.indexOf(victim?.id ?? ''), 1);
      stopped = { id: victim?.id ?? '', owner, via };
    }, testTimeoutFor(2));

    test('deleting a finished recording\'s files through another daemon removes them on the daemon that has them', async () => {
      expect(stopped).not.toBeNull();
      const { id, owner, via } = stopped ?? { id: '', owner: '', via: '' };
      expect((await d(via).api('DELETE', `/recordings/${id}/files`)).status).toBe(204);
      await waitFor(`recording ${id}'s directory to leave daemon ${owner}'s root`, () => (idsIn(d(owner).root).includes(id) ? undefined : true));
      for (const n of ['a', 'b', 'c']) expect((await d(n).api('GET', `/recordings/${id}`)).status).toBe(404);
    }, testTimeoutFor(1));

    test('Redis restarted mid-run: the recordings go on where they are, with no second recorder', async () => {
      const before = ((await d('a').api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] }).recordings.filter(running);
      expect(before.length).toBe(6);
      const t0 = Date.now();
      await redis.restart();
      const back = Date.now();
      notes.push(`Redis restart took ${back - t0} ms`);
      // Every recording has written more since, still on its daemon, still in one part.
      const after = await d('b').waitForList('every recording to grow after the Redis restart', (rs) => grownAndPublishedSince(before, rs, back));
      for (const b of before) {
        const r = after.find((x) => x.id === b.id);
        expect(r?.daemon).toBe(b.daemon);
        expect(r?.parts?.length).toBe(1);
        const holders = ['a', 'b', 'c'].filter((n) => idsIn(d(n).root).includes(b.id));
        expect(holders).toEqual([b.daemon]);
      }
    }, testTimeoutFor(1));

    test('SIGKILL of a daemon: its recordings continue on the others as new parts of the same ids', async () => {
      const before = ((await d('a').api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] }).recordings.filter(running);
      // The daemon with the most recordings dies.
      const counts = ['a', 'b', 'c'].map((n) => ({ n, k: before.filter((r) => r.daemon === n).length })).sort((x, y) => y.k - x.k);
      const dead = counts[0]?.n ?? 'a';
      const orphans = before.filter((r) => r.daemon === dead).map((r) => r.id);
      expect(orphans.length).toBeGreaterThan(0);
      const survivor = d(['a', 'b', 'c'].find((n) => n !== dead) ?? 'a');
      const t0 = Date.now();
      expect(await d(dead).signal('SIGKILL')).toBeNull();
      const after = await survivor.waitForList(`the recordings of ${dead} (${orphans.join(', ')}) to continue elsewhere`, (rs) => {
        const mine = rs.filter((r) => orphans.includes(r.id));
        return mine.length === orphans.length && mine.every((r) => running(r) && r.daemon !== dead && r.segments.some((s) => s.daemon === r.daemon && s.frames > 0));
      });
      notes.push(`SIGKILL of daemon ${dead}: its ${orphans.length} recording(s) recording again elsewhere after ${Date.now() - t0} ms (target: 10 s)`);
      for (const id of orphans) {
        const r = after.find((x) => x.id === id);
        expectTakenOver(r, dead);
        // The new part lies in exactly one survivor's root.
        const holders = ['a', 'b', 'c'].filter((n) => n !== dead && idsIn(d(n).root).includes(id));
        expect(holders).toEqual([r?.daemon]);
      }
      // The always target is still recorded by exactly one daemon.
      await survivor.waitForList('exactly one running recording of the always target', (rs) => rs.filter((r) => r.target === 'keeper' && running(r) && r.daemon !== dead).length === 1);
      daemons.delete(dead);
    }, testTimeoutFor(3));

    test('SIGTERM: a draining daemon hands its recordings back to the queue and another continues them', async () => {
      // A fresh daemon with room for what the leaving one records.
      daemons.set('d', await startDaemon({
        cluster: { redis: redis.url, name: 'd', capacity: CAPACITY * 2 },
        targets: [{ name: 'keeper', url: 'test://desktop?size=160x120', mode: 'always', 'fps-max': 5 }],
      }));
      const live = [...daemons.keys()].filter((n) => n !== 'd');
      const before = ((await d('d').api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] }).recordings.filter(running);
      const leaving = live.map((n) => ({ n, k: before.filter((r) => r.daemon === n).length })).sort((x, y) => y.k - x.k)[0]?.n ?? 'a';
      const handed = before.filter((r) => r.daemon === leaving);
      expect(handed.length).toBeGreaterThan(0);
      const t0 = Date.now();
      const exit = d(leaving).signal('SIGTERM');
      let code: number | null | undefined;
      void exit.then((c) => { code = c; });
      await waitFor(`daemon ${leaving} to exit after SIGTERM`, () => (code === undefined ? undefined : true), {
        detail: () => d(leaving).logs().filter((l) => l.time !== undefined).map((l) => `${String(l.time)} ${String(l.msg)} ${String(l.recording)}`).join('\n'),
      });
      expect(code).toBe(0);
      notes.push(`SIGTERM of daemon ${leaving}: exited after ${Date.now() - t0} ms`);
      const after = await d('d').waitForList(`the recordings of ${leaving} to continue elsewhere`, (rs) => handed.every((h) => {
        const r = rs.find((x) => x.id === h.id);
        return r !== undefined && running(r) && r.daemon !== leaving && (r.parts?.length ?? 0) === (h.parts?.length ?? 0) + 1;
      }));
      notes.push(`SIGTERM of daemon ${leaving}: its ${handed.length} recording(s) recording again elsewhere after ${Date.now() - t0} ms`);
      for (const h of handed) {
        const r = after.find((x) => x.id === h.id);
        expect(r?.parts?.[r.parts.length - 2]?.daemon).toBe(leaving);
        expect(r?.parts?.[r.parts.length - 2]?.end).not.toBeNull();
      }
      daemons.delete(leaving);
    }, testTimeoutFor(2));

    test('a target removed from a daemon\'s configuration (SIGHUP) is withdrawn from the cluster: its recording stops, its job goes', async () => {
      const [name] = [...daemons.keys()];
      const x = d(name ?? 'd');
      const running = await x.waitForList('the always target recording', (rs) => rs.some((r) => r.target === 'keeper' && r.state === 'recording'));
      const rec = running.find((r) => r.target === 'keeper' && r.state === 'recording');
      x.writeConfig({ cluster: { redis: redis.url, name, capacity: CAPACITY * 2 }, targets: [] });
      await x.signal('SIGHUP');
      // Reported done by every daemon; no other recording of the target starts: its job is gone and the
      // target is marked stopped (the other daemons still list it and would queue it at their next reload).
      for (const n of daemons.keys()) await d(n).waitForRecording(rec?.id ?? '', 'the target\'s recording done', (r) => r.state === 'done');
      const probe = new Redis(redis.url);
      try {
        await waitFor('the target\'s job to leave the queue', async () => ((await probe.exists('deskrec:recordings:target-keeper')) === 0 ? true : undefined));
        expect(await probe.sismember('deskrec:stopped-targets', 'keeper')).toBe(1);
      } finally {
        probe.disconnect();
      }
      const list = ((await x.api('GET', '/recordings?limit=1000')).body as { recordings: ApiRecording[] }).recordings;
      expect(list.filter((r) => r.target === 'keeper' && !['done', 'failed', 'interrupted'].includes(r.state))).toEqual([]);
    }, testTimeoutFor(2));
  });
});

describe('cluster mode, a full daemon', () => {
  test('a recording waiting in the queue is listed with no daemon, and a stop removes it before anyone records it', async () => {
    const redis = await startRedis();
    try {
      const x = await startDaemon({ cluster: { redis: redis.url, name: 'x', capacity: 1 } });
      const start = async (): Promise<string> => {
        const res = await x.api('POST', '/recordings', { url: URL_A, options: { 'fps-max': 10 } });
        expect(res.status).toBe(201);
        return (res.body as ApiRecording).id;
      };
      const first = await start();
      await x.waitForRecording(first, 'recording on x', (r) => running(r) && r.daemon === 'x');
      const queued = await start();
      const waiting = (await x.api('GET', `/recordings/${queued}`)).body as ApiRecording;
      expect(waiting.state).toBe('starting');
      expect(waiting.daemon).toBeNull();
      const stopped = (await x.api('DELETE', `/recordings/${queued}`)).body as ApiRecording;
      expect(stopped.state).toBe('done');
      // The daemon's one slot frees up; the next job it takes is a third recording, never the stopped one.
      expect((await x.api('DELETE', `/recordings/${first}`)).status).toBe(200);
      const third = await start();
      await x.waitForRecording(third, 'the third recording taken by x', (r) => running(r) && r.daemon === 'x');
      const after = (await x.api('GET', `/recordings/${queued}`)).body as ApiRecording;
      expect(after.state).toBe('done');
      expect(after.parts).toEqual([]);
      expect(idsIn(x.root)).not.toContain(queued);
    } finally {
      await redis.stop();
    }
  }, testTimeoutFor(3));
});

describe('the cluster state (src/daemon/cluster.ts) on a real Redis', () => {
  test('a write still queued when another daemon deleted the recording does not bring it back; pages skip nothing', async () => {
    const redis = await startRedis();
    const handlers = { process: () => Promise.resolve(), control: () => undefined, lockLost: () => undefined, log: () => undefined };
    const [a, b] = [await Cluster.connect(redis.url, handlers), await Cluster.connect(redis.url, handlers)];
    try {
      const rec = (id: string, start: string, state = 'recording'): ClusterRecording => ({
        id, target: null, url: URL_A, state, start, end: null, dir: '', segments: [], stats: null, error: null, daemon: 'a', parts: [],
      } as unknown as ClusterRecording);
      await a.put(rec('r1', '2026-12-06T00:00:01Z'));
      await a.put(rec('r1', '2026-12-06T00:00:01Z'));
      await b.forget('r1');
      await a.put(rec('r1', '2026-12-06T00:00:01Z'));
      expect(await b.get('r1')).toBeNull();
      expect((await b.page(0, 10)).total).toBe(0);
      for (let i = 0; i < 7; i++) await a.put(rec(`p${i}`, `2026-12-06T00:00:0${i}Z`, i % 2 === 0 ? 'done' : 'recording'));
      expect((await b.page(0, 3)).recordings.map((r) => r.id)).toEqual(['p6', 'p5', 'p4']);
      const done = await b.page(1, 2, (r) => r.state === 'done');
      expect(done.total).toBe(4);
      expect(done.recordings.map((r) => r.id)).toEqual(['p4', 'p2']);
    } finally {
      await a.close();
      await b.close();
      await redis.stop();
    }
  }, testTimeoutFor(1));
});

describe('cluster mode, retention', () => {
  test('a recording deleted by retention leaves the cluster\'s list too', async () => {
    const redis = await startRedis();
    try {
      const x = await startDaemon({ cluster: { redis: redis.url, name: 'x', capacity: 2 }, retention: { 'max-age': '1s' } });
      const startAndStop = async (): Promise<string> => {
        const id = ((await x.api('POST', '/recordings', { url: URL_A, options: { 'fps-max': 10 } })).body as ApiRecording).id;
        await x.waitForRecording(id, 'a frame', (r) => running(r) && (r.segments[0]?.frames ?? 0) > 0);
        expect((await x.api('DELETE', `/recordings/${id}`)).status).toBe(200);
        return id;
      };
      const old = await startAndStop();
      // Retention runs after every recording that ends: the second one's end finds the first past max-age.
      await new Promise((r) => setTimeout(r, 1100));
      await startAndStop();
      await waitFor(`recording ${old} gone from the cluster`, async () => ((await x.api('GET', `/recordings/${old}`)).status === 404 ? true : undefined));
      expect(idsIn(x.root)).not.toContain(old);
    } finally {
      await redis.stop();
    }
  }, testTimeoutFor(2));
});

describe('cluster mode with S3', () => {
  const KEY_ENV = 'DESKREC_TEST_S3_KEY';
  const SECRET_ENV = 'DESKREC_TEST_S3_SECRET';

  test('a recording continued by another daemon uploads each part under its own keys, all under the recording id', async () => {
    const [redis, s3] = await Promise.all([startRedis(), startS3()]);
    notes.push(`Swift start-up: ${s3.startupMs} ms`);
    await s3.createBucket('recordings');
    const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
    try {
      const config = (name: string): Record<string, unknown> => ({
        cluster: { redis: redis.url, name, capacity: 2 },
        // Short segments: the first part's finished segments are in S3 before its daemon is killed.
        rotation: { minutes: 0.05 },
        storage: { s3: { endpoint: s3.endpoint, bucket: 'recordings', prefix: 'deskrec/', region: s3.region, 'access-key-env': KEY_ENV, 'secret-key-env': SECRET_ENV, retry: { 'min-delay': 0.2, 'max-delay': 1 } } },
      });
      const env = { [KEY_ENV]: s3.accessKey, [SECRET_ENV]: s3.secretKey };
      const x = await startDaemon(config('x'), { env });
      const created = await x.api('POST', '/recordings', { url: URL_A, options: { 'fps-max': 10 } });
      expect(created.status).toBe(201);
      const id = (created.body as ApiRecording).id;
      const keys = async (): Promise<string[]> => ((await client.send(new ListObjectsV2Command({ Bucket: 'recordings', Prefix: `deskrec/${id}/` }))).Contents ?? []).map((o) => o.Key ?? '');
      await waitFor(`a first-part segment of ${id} in S3`, async () => ((await keys()).some((k) => new RegExp(`^deskrec/${id}/[^/]+\\.mp4$`).test(k)) ? true : undefined));
      // The second daemon starts only now, so the recording was x's; then x dies.
      const y = await startDaemon(config('y'), { env });
      expect(await x.signal('SIGKILL')).toBeNull();
      await y.waitForRecording(id, 'continued by y', (r) => running(r) && r.daemon === 'y' && r.segments.some((s) => s.daemon === 'y' && s.frames > 0));
      const stoppedRec = (await y.api('DELETE', `/recordings/${id}`)).body as ApiRecording;
      expect(stoppedRec.state).toBe('done');
      const all = await waitFor(`a second-part segment of ${id} in S3`, async () => {
        const k = await keys();
        return k.some((x2) => new RegExp(`^deskrec/${id}/p1/[^/]+\\.mp4$`).test(x2)) ? k : undefined;
      });
      notes.push(`S3 keys of a recording continued after a SIGKILL: ${all.map((k) => k.replace(`deskrec/${id}/`, '')).join(', ')}`);
      const r = await y.waitForRecording(id, 'done with its parts', (q) => q.state === 'done');
      expect(r.parts?.map((p) => p.daemon)).toEqual(['x', 'y']);
      // y serves x's segments that reached S3 (x is dead: S3 is the only place they can come from), each
      // byte for byte the object; one x never uploaded is refused with the daemon whose disk holds it.
      const done = await y.waitForRecording(id, 'every segment of y in S3', (q) => q.segments.filter((s) => s.daemon === 'y').every((s) => s.location === 's3'));
      const videos = done.segments.filter((s) => s.kind === 'mp4');
      expect(videos.map((s) => s.part)).toEqual(videos.map((s) => (s.daemon === 'x' ? 0 : 1)));
      let servedFromX = 0;
      for (const [n, s] of videos.entries()) {
        const res = await fetch(`${y.base}/recordings/${id}/segments/${n}`, { headers: { authorization: `Bearer ${y.token}` } });
        if (s.location !== 's3') {
          expect(s.daemon).toBe('x');
          expect(res.status).toBe(404);
          expect(await res.text()).toMatch(/on the disk of daemon x and not in S3 yet/);
          continue;
        }
        expect(res.status).toBe(200);
        const body = Buffer.from(await res.arrayBuffer());
        const key = `deskrec/${id}/${s.part === 0 ? '' : `p${s.part ?? 0}/`}${s.file}`;
        const obj = await client.send(new GetObjectCommand({ Bucket: 'recordings', Key: key }));
        expect(body.equals(Buffer.from(await obj.Body?.transformToByteArray() ?? []))).toBe(true);
        if (s.daemon === 'x') servedFromX++;
      }
      expect(servedFromX).toBeGreaterThan(0);
    } finally {
      client.destroy();
      await Promise.all([redis.stop(), s3.stop()]);
    }
  }, testTimeoutFor(4, 150000));
});
