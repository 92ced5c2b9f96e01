/**
 * The daemon with `storage.s3` (issue 14, the storage half), on real processes: the `deskrec daemon`
 * binary and OpenStack Swift's s3api (test/helpers/servers/s3.ts), every S3 call going to a real object
 * server. Checked: segments of a rotating recording go up while it records, each verified (downloaded
 * again, ffprobe's frame count equal to the segment's), and leave the local disk; the API says where each
 * is and serves them from S3 with Range (and the player's /play/ route, played in Chromium); S3 down:
 * nothing deleted, failures counted, a backlog, a DELETE refused; S3 back: everything goes up; a daemon
 * killed with files not yet uploaded uploads them after its restart and still lists the segments only S3
 * has; DELETE removes the objects; configuration mistakes name the variable, never a value. Also the
 * store alone: a multipart upload verified against the ETag Swift computes.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseConfig } from '../../src/daemon/config';
import { S3Store } from '../../src/daemon/s3-store';
import { UsageError } from '../../src/errors';
import { startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { decodedFrameCount, requireTool } from '../helpers/media';
import { useServerCleanup } from '../helpers/servers/registry';
import { startS3, type S3Server } from '../helpers/servers/s3';
import { thrown } from '../helpers/thrown';
import { seekInDaemonPlayer } from '../helpers/seek';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();

const BUCKET = 'recordings';
const PREFIX = 'deskrec/';
const KEY_ENV = 'DESKREC_TEST_S3_KEY';
const SECRET_ENV = 'DESKREC_TEST_S3_SECRET';

let s3: S3Server;
let client: S3Client;
let scratch: string;
const notes: string[] = [];

beforeAll(async () => {
  requireTool('ffprobe');
  s3 = await startS3();
  await s3.createBucket(BUCKET);
  client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
  scratch = mkdtempSync(path.join(tmpdir(), 'deskrec-s3-test-'));
  notes.push(`Swift start-up: ${s3.startupMs} ms`);
}, 120000);

afterAll(() => {
  client?.destroy();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  process.stdout.write(`S3 daemon tests:\n  ${notes.join('\n  ')}\n`);
});

/** storage.s3 as a test configures it: quick retries, so a store that comes back is used again soon. */
function s3Config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoint: s3.endpoint, bucket: BUCKET, prefix: PREFIX, region: s3.region,
    'access-key-env': KEY_ENV, 'secret-key-env': SECRET_ENV, retry: { 'min-delay': 0.2, 'max-delay': 1 }, ...extra,
  };
}

function keysEnv(): Record<string, string> {
  return { [KEY_ENV]: s3.accessKey, [SECRET_ENV]: s3.secretKey };
}

async function start(config: Record<string, unknown>, home?: string): Promise<DaemonRun> {
  const storage = (config.storage ?? {}) as Record<string, unknown>;
  return startDaemon({ ...config, storage: { s3: s3Config(), ...storage } }, { env: keysEnv(), ...(home === undefined ? {} : { home }) });
}

async function startRecording(d: DaemonRun, body: unknown = { url: 'test://desktop?size=320x200', options: { 'fps-max': 10 } }): Promise<string> {
  const created = await d.api('POST', '/recordings', body);
  expect(created.status).toBe(201);
  return (created.body as ApiRecording).id;
}

/** The object's bytes, through S3 (GetObject). */
async function download(key: string): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await got.Body?.transformToByteArray() ?? []);
}

/** A metric's value from /metrics (NaN when absent). */
async function metric(d: DaemonRun, name: string): Promise<number> {
  const text = String((await d.api('GET', '/metrics')).body);
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** upload.jsonl's verified entries by file (the daemon's own record of what it verified). */
function verifiedEntries(d: DaemonRun, r: ApiRecording): Map<string, { bytes: number; etag: string; key: string }> {
  const out = new Map<string, { bytes: number; etag: string; key: string }>();
  for (const line of readFileSync(path.join(d.root, r.dir, 'upload.jsonl'), 'utf8').split('\n')) {
    if (line === '') continue;
    const v = JSON.parse(line) as { file: string; bytes?: number; etag?: string; key?: string };
    if (v.etag !== undefined && v.bytes !== undefined && v.key !== undefined) out.set(v.file, { bytes: v.bytes, etag: v.etag, key: v.key });
  }
  return out;
}

/**
 * Every video segment of `r` is in the bucket and plays: downloaded through S3, its size is the verified
 * size, Swift's own API (a second opinion, not s3api) reports the same size, and ffprobe decodes exactly
 * the segment's frames from it. Returns the downloaded bytes by file.
 */
async function expectSegmentsInS3(d: DaemonRun, r: ApiRecording): Promise<Map<string, Buffer>> {
  const verified = verifiedEntries(d, r);
  const bytes = new Map<string, Buffer>();
  let frames = 0;
  for (const s of r.segments.filter((x) => x.kind === 'mp4')) {
    const key = `${PREFIX}${r.id}/${s.file}`;
    const body = await download(key);
    const v = verified.get(s.file);
    expect({ file: s.file, bytes: body.length, key: v?.key }).toEqual({ file: s.file, bytes: v?.bytes, key });
    expect((await s3.objectInfo(BUCKET, key))?.size).toBe(body.length);
    // A single PUT's ETag is the MD5 of the content (segments here are below the part size).
    expect(v?.etag).toBe(createHash('md5').update(body).digest('hex'));
    const file = path.join(scratch, `${r.id}-${s.file}`);
    writeFileSync(file, body);
    expect({ file: s.file, frames: decodedFrameCount(file) }).toEqual({ file: s.file, frames: s.frames });
    frames += s.frames;
    bytes.set(s.file, body);
  }
  if (r.state === 'done') expect(frames).toBe((r.stats?.framesEmitted ?? NaN) - (r.stats?.framesMerged ?? NaN));
  return bytes;
}

describe('a daemon with storage.s3', () => {
  let d: DaemonRun;
  let recId = '';
  let objects = new Map<string, Buffer>();

  beforeAll(async () => {
    d = await start({ rotation: { minutes: 0.04 } });
  }, testTimeoutFor(1));

  test('rotation: finished segments go to S3 while recording, verified, then leave the local disk; the API says where they are', async () => {
    const t0 = Date.now();
    recId = await startRecording(d);
    // The first two segments are in S3 and gone locally while the third is still being recorded.
    const during = await d.waitForRecording(recId, 'two segments uploaded while recording', (r) => r.state === 'recording'
      && r.segments.length >= 3 && r.segments[0]?.location === 's3' && r.segments[1]?.location === 's3', 60000);
    notes.push(`first two segments in S3 while recording: ${Date.now() - t0} ms after the start`);
    expect(during.state).toBe('recording');
    const listed = (await s3.listObjects(BUCKET, `${PREFIX}${recId}/`)).map((o) => o.name);
    expect(listed).toEqual(expect.arrayContaining([`${PREFIX}${recId}/display.mp4`, `${PREFIX}${recId}/display-001.mp4`]));
    expect(listed).not.toContain(`${PREFIX}${recId}/session.json`);
    expect(existsSync(path.join(d.root, during.dir, 'display.mp4'))).toBe(false);
    expect(existsSync(path.join(d.root, during.dir, 'display-001.mp4'))).toBe(false);
    // The segment being written is local.
    expect(during.segments[during.segments.length - 1]?.location).toBe('local');

    const stopped = (await d.api('DELETE', `/recordings/${recId}`)).body as ApiRecording;
    expect(stopped.state).toBe('done');
    const r = await d.waitForRecording(recId, 'every segment in S3, nothing pending', (x) => x.segments.every((s) => s.location === 's3') && x.upload?.pending === 0);
    expect(r.upload).toMatchObject({ pending: 0, failed: 0 });
    for (const s of r.segments) expect(existsSync(path.join(d.root, r.dir, s.file))).toBe(false);
    objects = await expectSegmentsInS3(d, r);
    // session.json went up at the end, and stays local (the API serves it).
    await waitFor('session.json in the bucket', async () => ((await s3.objectInfo(BUCKET, `${PREFIX}${recId}/session.json`)) === undefined ? undefined : true));
    expect(JSON.parse((await download(`${PREFIX}${recId}/session.json`)).toString('utf8'))).toEqual(JSON.parse(readFileSync(path.join(d.root, r.dir, 'session.json'), 'utf8')));
    expect(await metric(d, 'deskrec_uploads_total')).toBeGreaterThanOrEqual(r.segments.length + 1);
    expect(await metric(d, 'deskrec_upload_backlog_bytes')).toBe(0);
    expect(await metric(d, 'deskrec_uploads_failed_total')).toBe(0);
    // The keys appear nowhere in the log.
    const out = JSON.stringify(d.logs()) + d.stderr();
    expect(out).not.toContain(s3.secretKey);
    expect(out).not.toContain(s3.accessKey);
  }, testTimeoutFor(4));

  test('GET /segments/:n of a segment only in S3: the object\'s bytes, whole and by range', async () => {
    const r = (await d.api('GET', `/recordings/${recId}`)).body as ApiRecording;
    const second = r.segments[1];
    const body = second === undefined ? undefined : objects.get(second.file);
    if (second === undefined || body === undefined) throw new Error('no second segment');
    const auth = { authorization: `Bearer ${d.token}` };
    const whole = await fetch(`${d.base}/recordings/${recId}/segments/1`, { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(body)).toBe(true);
    const part = await fetch(`${d.base}/recordings/${recId}/segments/1`, { headers: { ...auth, range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${body.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(body.subarray(100, 1100))).toBe(true);
    const tail = await fetch(`${d.base}/recordings/${recId}/segments/1`, { headers: { ...auth, range: 'bytes=-10' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 10))).toBe(true);
    const past = await fetch(`${d.base}/recordings/${recId}/segments/1`, { headers: { ...auth, range: `bytes=${body.length}-` } });
    expect(past.status).toBe(416);
    // The player's route: the same file with its edit list hidden, so it starts at 0 with every frame.
    const play = await fetch(`${d.base}/recordings/${recId}/play/1`, { headers: auth });
    expect(play.status).toBe(200);
    const played = Buffer.from(await play.arrayBuffer());
    expect(played.length).toBe(body.length);
    const file = path.join(scratch, 'played.mp4');
    writeFileSync(file, played);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=start_time', '-of', 'json', file]).toString()) as { streams: { start_time: string }[] };
    expect(Number(probe.streams[0]?.start_time)).toBe(0);
    expect(decodedFrameCount(file)).toBe(second.frames);
  }, testTimeoutFor(1));

  test('Chromium plays and seeks a segment that is only in S3, through the page\'s cookie', async () => {
    const r = (await d.api('GET', `/recordings/${recId}`)).body as ApiRecording;
    const seg = r.segments[1];
    if (seg === undefined) throw new Error('no second segment');
    expect(seg.location).toBe('s3');
    const at = await seekInDaemonPlayer(d.base, d.token, recId, 1);
    expect(at.duration).toBeCloseTo(seg.duration_ms / 1000, 1);
    expect(at.t).toBeCloseTo(at.target, 1);
    expect(at.videoWidth).toBe(seg.width);
  }, testTimeoutFor(3));

  test('DELETE /recordings/:id/files removes the objects and the local directory', async () => {
    const r = (await d.api('GET', `/recordings/${recId}`)).body as ApiRecording;
    expect((await s3.listObjects(BUCKET, `${PREFIX}${recId}/`)).length).toBeGreaterThan(0);
    const del = await d.api('DELETE', `/recordings/${recId}/files`);
    expect(del.status).toBe(204);
    expect(await s3.listObjects(BUCKET, `${PREFIX}${recId}/`)).toEqual([]);
    expect(existsSync(path.join(d.root, r.dir))).toBe(false);
    expect((await d.api('GET', `/recordings/${recId}`)).status).toBe(404);
    expect(d.logs().some((l) => l.recording === recId && String(l.msg).startsWith('deleted') && String(l.msg).includes('S3'))).toBe(true);
  }, testTimeoutFor(1));

  test('S3 down: segments stay local, failures counted, a backlog, DELETE refused; S3 back: everything goes up', async () => {
    await s3.down();
    let upAgain = false;
    try {
      const id = await startRecording(d);
      const r = await d.waitForRecording(id, 'three segments, uploads failing', (x) => x.segments.length >= 3 && (x.upload?.failed ?? 0) >= 1, 60000);
      await d.api('DELETE', `/recordings/${id}`);
      const stopped = await d.waitForRecording(id, 'every file queued, some failed', (x) => x.state === 'done' && (x.upload?.pending ?? 0) >= x.segments.length);
      expect(stopped.segments.every((s) => s.location === 'local')).toBe(true);
      for (const s of stopped.segments) expect(existsSync(path.join(d.root, r.dir, s.file))).toBe(true);
      expect(stopped.upload?.uploaded).toBe(0);
      expect(stopped.upload?.lastError).toMatch(/ECONNREFUSED/);
      expect(await metric(d, 'deskrec_uploads_failed_total')).toBeGreaterThan(0);
      const backlog = await metric(d, 'deskrec_upload_backlog_bytes');
      expect(backlog).toBeGreaterThanOrEqual(stopped.segments.reduce((n, s) => n + s.bytes, 0) * 0.9);
      const failures = d.logs().filter((l) => l.recording === id && String(l.msg).startsWith('upload of'));
      expect(failures.length).toBeGreaterThan(0);
      expect(String(failures[0]?.msg)).toContain('the local file stays');
      // A recording whose objects cannot be deleted is not deleted at all.
      const del = await d.api('DELETE', `/recordings/${id}/files`);
      expect([del.status, (del.body as { error: string }).error]).toEqual([502, 'S3_ERROR']);
      for (const s of stopped.segments) expect(existsSync(path.join(d.root, r.dir, s.file))).toBe(true);

      const t0 = Date.now();
      await s3.up();
      upAgain = true;
      const done = await d.waitForRecording(id, 'every segment in S3 after the store came back', (x) => x.segments.every((s) => s.location === 's3') && x.upload?.pending === 0);
      notes.push(`S3 back: backlog of ${backlog} bytes uploaded ${Date.now() - t0} ms after up() returned`);
      expect(await metric(d, 'deskrec_upload_backlog_bytes')).toBe(0);
      for (const s of done.segments) expect(existsSync(path.join(d.root, done.dir, s.file))).toBe(false);
      await expectSegmentsInS3(d, done);
      expect(await d.signal('SIGTERM')).toBe(0);
    } finally {
      if (!upAgain) await s3.up();
    }
  }, testTimeoutFor(6));
});

test('a daemon killed with segments not yet uploaded uploads them after its restart, and still lists those only S3 has', async () => {
  const first = await start({ rotation: { minutes: 0.04 } });
  const id = await startRecording(first);
  await first.waitForRecording(id, 'the first segment in S3', (x) => x.segments[0]?.location === 's3', 60000);
  await s3.down();
  let upAgain = false;
  try {
    const before = await first.waitForRecording(id, 'two more finished segments, not uploaded', (x) => x.segments.length >= 4 && (x.upload?.failed ?? 0) >= 1, 60000);
    // Finished while S3 was down: still local when the daemon dies (the one being written is local anyway).
    const leftLocal = before.segments.slice(0, -1).filter((s) => s.location === 'local').map((s) => s.file);
    expect(leftLocal.length).toBeGreaterThanOrEqual(1);
    expect(await first.signal('SIGKILL')).toBe(null);
    await s3.up();
    upAgain = true;
    const t0 = Date.now();
    const second = await start({ rotation: { minutes: 0.04 } }, first.home);
    // The finished segments at least (the one being written at the kill is kept only if a fragment of it
    // was complete: src/recorder/recover.ts).
    const finishedBefore = before.segments.length - 1;
    const r = await second.waitForRecording(id, 'interrupted, every segment uploaded', (x) => x.state === 'interrupted' && x.segments.length >= finishedBefore
      && x.segments.every((s) => s.location === 's3') && x.upload?.pending === 0);
    notes.push(`after the restart: ${r.segments.length} segments in S3 ${Date.now() - t0} ms after the daemon started`);
    // display.mp4 was only in S3 when the daemon died: the restarted one lists it from upload.jsonl.
    expect(r.segments[0]?.file).toBe('display.mp4');
    expect(r.segments.map((s) => s.file)).toEqual(expect.arrayContaining(before.segments.slice(0, finishedBefore).map((s) => s.file)));
    const uploadedAfter = second.logs().filter((l) => l.recording === id && String(l.msg).startsWith('uploaded')).map((l) => l.file);
    expect(uploadedAfter).toEqual(expect.arrayContaining(leftLocal));
    await expectSegmentsInS3(second, r);
    expect(await second.signal('SIGTERM')).toBe(0);
  } finally {
    if (!upAgain) await s3.up();
  }
}, testTimeoutFor(6));

test('keep-local-hours keeps verified files that long; PNG frames go up too; retention deletes the objects', async () => {
  const keepMs = 0.002 * 3_600_000;
  const d = await start({ storage: { s3: s3Config({ 'keep-local-hours': 0.002 }) }, retention: { 'max-age': '10s' } });
  const a = await startRecording(d, { url: 'test://desktop?size=320x200', options: { format: 'mp4+png', 'fps-max': 5 } });
  await d.waitForRecording(a, 'ten frames', (x) => (x.segments[0]?.frames ?? 0) >= 10);
  await d.api('DELETE', `/recordings/${a}`);
  const up = await d.waitForRecording(a, 'every file uploaded', (x) => x.state === 'done' && x.upload?.pending === 0);
  const seen = Date.now();
  const pngFrames = up.segments.filter((s) => s.kind === 'png').reduce((n, s) => n + s.frames, 0);
  expect(pngFrames).toBeGreaterThanOrEqual(10);
  // Every MP4 and PNG frame, frames.jsonl and session.json.
  expect(up.upload?.uploaded).toBe(up.segments.filter((s) => s.kind === 'mp4').length + pngFrames + 2);
  const pngObjects = (await s3.listObjects(BUCKET, `${PREFIX}${a}/frames/`)).map((o) => o.name);
  expect(pngObjects.filter((n) => n.endsWith('.png'))).toHaveLength(pngFrames);
  expect(pngObjects).toContain(`${PREFIX}${a}/frames/frames.jsonl`);
  const verifiedAt = new Map<string, number>();
  for (const line of readFileSync(path.join(d.root, up.dir, 'upload.jsonl'), 'utf8').split('\n')) {
    const v = line === '' ? null : JSON.parse(line) as { file: string; verified?: string };
    if (v?.verified !== undefined) verifiedAt.set(v.file, Date.parse(v.verified));
  }
  const mp4 = verifiedAt.get('display.mp4');
  if (mp4 === undefined) throw new Error('display.mp4 not verified');
  // Seen well within the keep: still on the local disk (a machine too slow to look in time skips this).
  if (seen - mp4 < keepMs - 2000) {
    expect(existsSync(path.join(d.root, up.dir, 'display.mp4'))).toBe(true);
    expect(up.segments.every((s) => s.location === 'local')).toBe(true);
  } else {
    notes.push(`keep-local: looked ${seen - mp4} ms after the upload, too late to see the kept copy`);
  }
  const gone = await d.waitForRecording(a, 'the local copies deleted after the keep', (x) => x.segments.every((s) => s.location === 's3'));
  expect(existsSync(path.join(d.root, gone.dir, 'display.mp4'))).toBe(false);
  expect(existsSync(path.join(d.root, gone.dir, 'frames', 'frame-000001.png'))).toBe(false);
  expect(existsSync(path.join(d.root, gone.dir, 'frames', 'frames.jsonl'))).toBe(true);
  expect(existsSync(path.join(d.root, gone.dir, 'session.json'))).toBe(true);
  const deletion = d.logs().find((l) => l.recording === a && l.msg === 'local copy of display.mp4 deleted (verified in S3)');
  expect(Number(deletion?.time) - mp4).toBeGreaterThanOrEqual(keepMs);

  // Retention: once the recording is older than max-age, the next pass (a recording ending) deletes it,
  // its objects included.
  const end = Date.parse(gone.end ?? '');
  await waitFor('the first recording to pass max-age', () => (Date.now() > end + 10_000 ? true : undefined), { timeoutMs: 20_000 });
  const b = await startRecording(d);
  await d.waitForRecording(b, 'a frame', (x) => (x.segments[0]?.frames ?? 0) > 0);
  await d.api('DELETE', `/recordings/${b}`);
  await d.waitForList('the old recording deleted by retention', (rs) => !rs.some((r) => r.id === a));
  expect(await s3.listObjects(BUCKET, `${PREFIX}${a}/`)).toEqual([]);
  expect(existsSync(path.join(d.root, gone.dir))).toBe(false);
  expect(d.logs().some((l) => l.recording === a && String(l.msg).startsWith('recording deleted') && String(l.msg).includes('max-age'))).toBe(true);
  expect(await d.signal('SIGTERM')).toBe(0);
}, testTimeoutFor(6));

describe('storage.s3 configuration', () => {
  const base = (s3Section: string): string => `storage: {root: /r, s3: ${s3Section}}\napi: {token-file: /t}\n`;
  const problem = (text: string): string => {
    const err = thrown(UsageError, () => parseConfig(text, '/etc/deskrec', 'deskrec.yaml'));
    expect(err.code).toBe('CONFIG_INVALID');
    return err.message;
  };

  test('a missing environment variable is named, the other key\'s value never shown', () => {
    const name = `DESKREC_TEST_UNSET_${process.pid}`;
    const set = `DESKREC_TEST_SET_${process.pid}`;
    process.env[set] = 'a-visible-access-key-value';
    try {
      const msg = problem(base(`{endpoint: "http://127.0.0.1:9", bucket: rec, access-key-env: ${set}, secret-key-env: ${name}}`));
      expect(msg).toContain(`storage.s3.secret-key-env: environment variable ${name} is not set`);
      expect(msg).not.toContain('a-visible-access-key-value');
    } finally {
      Reflect.deleteProperty(process.env, set);
    }
  });

  test('keys from files (relative to the config), defaults; unreadable or empty files are named', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-s3-conf-'));
    try {
      writeFileSync(path.join(dir, 'key'), 'AKIDEXAMPLE\n');
      writeFileSync(path.join(dir, 'secret'), 'wJalrXUtnFEMI\nsecond line ignored\n');
      writeFileSync(path.join(dir, 'empty'), '\n');
      const c = parseConfig(base('{endpoint: "https://s3.example", bucket: rec, access-key-file: key, secret-key-file: secret}'), dir);
      expect(c.storage.s3).toMatchObject({
        endpoint: 'https://s3.example', bucket: 'rec', prefix: '', region: 'us-east-1', 'path-style': true, 'keep-local-hours': 0,
        'part-size': 8 * 1024 * 1024, concurrency: 2, retry: { 'min-delay': 1, 'max-delay': 60 }, 'access-key-file': path.join(dir, 'key'),
      });
      // The key itself is not kept in the configuration (it is read where it is used).
      expect(JSON.stringify(c)).not.toContain('wJalrXUtnFEMI');
      const msg = problem(base(`{endpoint: "https://s3.example", bucket: rec, access-key-file: ${path.join(dir, 'missing')}, secret-key-file: ${path.join(dir, 'empty')}}`));
      expect(msg).toContain(`storage.s3.access-key-file: cannot read ${path.join(dir, 'missing')}: ENOENT`);
      expect(msg).toContain(`storage.s3.secret-key-file: ${path.join(dir, 'empty')} is empty`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ['no key source', '{endpoint: "http://h:1", bucket: rec}', 'storage.s3.access-key-env: give access-key-env or access-key-file'],
    ['two key sources', '{endpoint: "http://h:1", bucket: rec, access-key-env: A, access-key-file: /k, secret-key-env: B}', 'storage.s3.access-key-file: give access-key-env or access-key-file, not both'],
    ['a bad endpoint', '{endpoint: "ftp://h", bucket: rec, access-key-env: A, secret-key-env: B}', 'storage.s3.endpoint: must be http:// or https://'],
    ['keys in the endpoint', '{endpoint: "http://k:s@h:1", bucket: rec, access-key-env: A, secret-key-env: B}', 'storage.s3.endpoint: no credentials in the URL'],
    ['a bad bucket', '{endpoint: "http://h:1", bucket: "Rec_1", access-key-env: A, secret-key-env: B}', 'storage.s3.bucket: must be an S3 bucket name'],
    ['a small part size', '{endpoint: "http://h:1", bucket: rec, access-key-env: A, secret-key-env: B, part-size: 1MiB}', 'storage.s3.part-size: must be at least 5 MiB'],
    ['a key in the file itself', '{endpoint: "http://h:1", bucket: rec, access-key: AKID, access-key-env: A, secret-key-env: B}', 'storage.s3: Unrecognized key: "access-key"'],
  ])('%s is refused with its path', (_what, section, expected) => {
    expect(problem(base(section))).toContain(expected);
  });

  test('the daemon does not start without its key, and says which variable', async () => {
    const err = await startDaemon({ storage: { s3: s3Config() } }, { env: { [KEY_ENV]: 'x' } }).then(() => null, (e: unknown) => e as Error);
    expect(err?.message).toContain(`storage.s3.secret-key-env: environment variable ${SECRET_ENV} is not set`);
    expect(err?.message).toContain('CONFIG_INVALID');
  });
});

test('the store alone: a multipart upload is verified against the ETag Swift computes', async () => {
  Object.assign(process.env, keysEnv());
  let config;
  try {
    config = parseConfig(`storage: {root: /r, s3: {endpoint: "${s3.endpoint}", bucket: ${BUCKET}, access-key-env: ${KEY_ENV}, secret-key-env: ${SECRET_ENV}, part-size: 5MiB}}\napi: {token-file: /t}\n`, '/', 'test');
  } finally {
    Reflect.deleteProperty(process.env, KEY_ENV);
    Reflect.deleteProperty(process.env, SECRET_ENV);
  }
  if (config.storage.s3 === undefined) throw new Error('no storage.s3');
  const store = new S3Store(config.storage.s3, { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey });
  try {
    const file = path.join(scratch, 'big.bin');
    const body = randomBytes(11 * 1024 * 1024 + 5);
    writeFileSync(file, body);
    const stored = await store.upload(file, 'store/big.bin', new AbortController().signal);
    expect(stored.etag).toMatch(/^[0-9a-f]{32}-3$/);
    expect((await download('store/big.bin')).equals(body)).toBe(true);
    expect((await store.head('store/big.bin'))?.etag).toBe(stored.etag);
    // A file of exactly one part goes up as one PUT: its ETag is the plain MD5.
    const one = body.subarray(0, 5 * 1024 * 1024);
    writeFileSync(file, one);
    expect((await store.upload(file, 'store/one.bin', new AbortController().signal)).etag).toBe(createHash('md5').update(one).digest('hex'));
    expect((await store.read('store/big.bin', 7, 9)).equals(body.subarray(7, 16))).toBe(true);
    expect(await store.head('store/none')).toBeNull();
  } finally {
    store.destroy();
  }
}, testTimeoutFor(1));
