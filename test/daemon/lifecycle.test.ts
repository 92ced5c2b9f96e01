/**
 * The daemon over time, on real processes: rotation by time and by size without a missing frame, retention
 * deleting the oldest finished recordings (never the active one) and saying so, a recorded Xvnc killed and
 * started again (reconnecting, then a new segment), the daemon SIGKILLed and restarted (files playable,
 * recordings marked interrupted, `always` targets recording again) and SIGHUP adding and removing targets.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { decodedFrameCount, requireTool, topLevelBoxes } from '../helpers/media';
import { useServerCleanup } from '../helpers/servers/registry';
import { startScrollingXterm } from '../helpers/servers/x11-clients';
import { startXvnc } from '../helpers/servers/xvnc';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

/** Consecutive segments: each begins where the one before ended, and every frame is in exactly one file. */
function expectContiguous(d: DaemonRun, r: ApiRecording): void {
  for (let i = 1; i < r.segments.length; i++) {
    const prev = r.segments[i - 1];
    const cur = r.segments[i];
    if (prev === undefined || cur === undefined) continue;
    expect(Math.abs(cur.start_ms - (prev.start_ms + prev.duration_ms))).toBeLessThan(1);
  }
  let total = 0;
  for (const s of r.segments) {
    expect({ file: s.file, frames: decodedFrameCount(path.join(d.root, r.dir, s.file)) }).toEqual({ file: s.file, frames: s.frames });
    total += s.frames;
  }
  // Frames merged into one waiting for the encoder were emitted but are not frames of a file.
  expect(total).toBe((r.stats?.framesEmitted ?? NaN) - (r.stats?.framesMerged ?? NaN));
}

/**
 * Recording options for the tests that wait for bytes (rotation by size, retention): a keyframe every 2 s
 * (the default is 10 s, which writes ~2.5x fewer bytes on this desktop), so the sizes they wait for come in
 * seconds rather than a minute.
 */
const BYTES_QUICKLY = { 'fps-max': 10, 'keyframe-interval': 2 };

async function startAndStop(d: DaemonRun, what: string, pred: (r: ApiRecording) => boolean, body: unknown = { url: 'test://desktop?size=320x200', options: BYTES_QUICKLY }): Promise<ApiRecording> {
  const created = await d.api('POST', '/recordings', body);
  expect(created.status).toBe(201);
  const id = (created.body as ApiRecording).id;
  await d.waitForRecording(id, what, pred);
  const stopped = await d.api('DELETE', `/recordings/${id}`);
  return stopped.body as ApiRecording;
}

test('rotation by time: consecutive segments, no frame missing between them', async () => {
  const d = await startDaemon({ rotation: { minutes: 0.04 } });
  const r = await startAndStop(d, 'three segments', (x) => x.segments.length >= 3);
  expect(r.state).toBe('done');
  expect(r.segments.length).toBeGreaterThanOrEqual(3);
  expect(r.segments.slice(0, 3).map((s) => s.file)).toEqual(['display.mp4', 'display-001.mp4', 'display-002.mp4']);
  // 2.4 s a segment (the check runs every second, so up to one more).
  for (const s of r.segments.slice(0, -1)) expect(s.duration_ms).toBeGreaterThanOrEqual(2400);
  expectContiguous(d, r);
  expect(d.logs().filter((l) => l.recording === r.id && String(l.msg).startsWith('rotated')).length).toBe(r.segments.length - 1);
  expect(await d.signal('SIGTERM')).toBe(0);
}, testTimeoutFor(2));

test('rotation by size: a new segment once one passes the size, none missing a frame', async () => {
  const d = await startDaemon({ rotation: { megabytes: 0.15 } });
  const r = await startAndStop(d, 'three segments', (x) => x.segments.length >= 3, { url: 'test://desktop?size=640x400', options: { ...BYTES_QUICKLY, 'fps-max': 20 } });
  for (const s of r.segments.slice(0, -1)) expect(s.bytes).toBeGreaterThanOrEqual(150_000 * 0.8);
  expectContiguous(d, r);
  expect(await d.signal('SIGTERM')).toBe(0);
}, testTimeoutFor(2));

test('retention: the oldest finished recordings go first, the active one stays, the log says what went', async () => {
  const d = await startDaemon({ retention: { 'max-bytes': '200KB' } });
  const first = await startAndStop(d, '≥ 80 KB', (x) => (x.stats?.bytes ?? 0) >= 80_000);
  await startAndStop(d, '≥ 80 KB', (x) => (x.stats?.bytes ?? 0) >= 80_000);
  // A running recording that grows past the bound on its own: the finished ones make room, it stays.
  const active = await d.api('POST', '/recordings', { url: 'test://desktop?size=320x200', options: BYTES_QUICKLY });
  const activeId = (active.body as ApiRecording).id;
  await d.waitForRecording(activeId, '≥ 150 KB', (x) => (x.stats?.bytes ?? 0) >= 150_000, 60000);
  // Retention runs when a recording ends: end a short fourth one.
  await startAndStop(d, 'a frame', (x) => (x.segments[0]?.frames ?? 0) > 0);
  const list = await d.waitForList('the oldest recording deleted', (rs) => !rs.some((r) => r.id === first.id));
  expect(list.map((r) => r.id)).toContain(activeId);
  expect(existsSync(path.join(d.root, first.dir))).toBe(false);
  const deleted = d.logs().filter((l) => l.msg !== undefined && l.msg.startsWith('recording deleted'));
  expect(deleted.map((l) => l.recording)).toContain(first.id);
  expect(deleted.map((l) => l.recording)).not.toContain(activeId);
  expect(String(deleted[0]?.msg)).toContain('max-bytes');
  expect(await d.signal('SIGTERM')).toBe(0);
}, testTimeoutFor(5));

test('retention by age: finished recordings older than max-age are deleted', async () => {
  const d = await startDaemon({ retention: { 'max-age': '1s' } });
  const old = await startAndStop(d, 'a frame', (x) => (x.segments[0]?.frames ?? 0) > 0);
  await new Promise((r) => setTimeout(r, 1100));
  await startAndStop(d, 'a frame', (x) => (x.segments[0]?.frames ?? 0) > 0);
  await d.waitForList('the old recording deleted', (rs) => !rs.some((r) => r.id === old.id));
  expect(d.logs().some((l) => l.recording === old.id && String(l.msg).includes('max-age'))).toBe(true);
  expect(await d.signal('SIGTERM')).toBe(0);
}, testTimeoutFor(3));

test('the recorded Xvnc killed and started again: reconnecting, then recording in a new segment', async () => {
  const first = await startXvnc({ width: 320, height: 240, security: 'None' });
  const port = first.port;
  await startScrollingXterm(first, { geometry: '30x8+4+4' });
  const d = await startDaemon({ reconnect: { 'min-delay': 0.2, 'max-delay': 1 }, targets: [{ name: 'vm', url: `vnc://127.0.0.1:${port}`, mode: 'always' }] });
  const [rec] = await d.waitForList('the target recording', (rs) => rs.some((r) => r.target === 'vm' && r.state === 'recording' && (r.segments[0]?.frames ?? 0) > 3));
  if (rec === undefined) throw new Error('no recording');
  await first.stop();
  await d.waitForRecording(rec.id, 'reconnecting', (r) => r.state === 'reconnecting');
  const second = await startXvnc({ width: 320, height: 240, security: 'None', rfbPort: port, background: '#603020' });
  await startScrollingXterm(second, { geometry: '30x8+4+4' });
  const back = await d.waitForRecording(rec.id, 'recording again in a second segment', (r) => r.state === 'recording' && r.segments.length >= 2 && (r.segments[1]?.frames ?? 0) > 0);
  expect(back.id).toBe(rec.id);
  expect(back.stats?.reconnects).toBeGreaterThanOrEqual(1);
  expect(await d.signal('SIGTERM')).toBe(0);
  const meta = JSON.parse(readFileSync(path.join(d.root, back.dir, 'recording.json'), 'utf8')) as ApiRecording;
  expect(meta.state).toBe('done');
  const session = JSON.parse(readFileSync(path.join(d.root, back.dir, 'session.json'), 'utf8')) as { gaps: unknown[]; segments: { file: string }[] };
  expect(session.gaps.length).toBeGreaterThanOrEqual(1);
  for (const s of session.segments) expect(decodedFrameCount(path.join(d.root, back.dir, s.file))).toBeGreaterThan(0);
  await second.stop();
}, testTimeoutFor(5));

test('SIGKILL, then a restart: files play, recordings marked interrupted, always targets record again; SIGHUP adds and removes targets', async () => {
  const x = await startXvnc({ width: 320, height: 240, security: 'None' });
  await startScrollingXterm(x, { geometry: '30x8+4+4' });
  const config = { targets: [{ name: 'vm', url: `vnc://127.0.0.1:${x.port}`, mode: 'always' }, { name: 'synth', url: 'test://desktop?size=320x200', mode: 'always', 'fps-max': 10 }] };
  const d = await startDaemon(config);
  const before = await d.waitForList('both targets past 2 s', (rs) => ['vm', 'synth'].every((t) => rs.some((r) => r.target === t && r.state === 'recording' && (r.segments[0]?.duration_ms ?? 0) > 2000)));
  expect(await d.signal('SIGKILL')).toBeNull();

  const again = await startDaemon(config, { home: d.home });
  const interrupted = await again.waitForList('the killed recordings interrupted, the targets recording again', (rs) => before.every((b) => rs.some((r) => r.id === b.id && r.state === 'interrupted'))
    && ['vm', 'synth'].every((t) => rs.some((r) => r.target === t && r.state === 'recording')));
  for (const b of before) {
    const r = interrupted.find((x2) => x2.id === b.id);
    if (r === undefined) throw new Error('lost');
    expect(r.error?.code).toBe('INTERRUPTED');
    const seg = r.segments[0];
    if (seg === undefined) throw new Error(`no segment kept for ${r.id}`);
    const file = path.join(again.root, r.dir, seg.file);
    // Finished as fast start where possible: moov before mdat, every kept frame decodes.
    const boxes = topLevelBoxes(file);
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    expect(decodedFrameCount(file)).toBe(seg.frames);
    expect(seg.frames).toBeGreaterThan(0);
    expect(seg.width).toBe(b.segments[0]?.width);
  }

  // SIGHUP: synth removed, another added.
  again.writeConfig({ targets: [config.targets[0], { name: 'synth2', url: 'test://desktop?size=160x120', mode: 'always', 'fps-max': 5 }] });
  await again.signal('SIGHUP');
  const reloaded = await again.waitForList('synth stopped and synth2 recording', (rs) => rs.some((r) => r.target === 'synth2' && r.state === 'recording')
    && rs.filter((r) => r.target === 'synth').every((r) => r.state !== 'recording' && r.state !== 'starting'));
  expect(reloaded.filter((r) => r.target === 'vm' && r.state === 'recording')).toHaveLength(1);
  // A broken configuration is refused on reload and the daemon goes on as it was.
  again.writeConfig({ targets: [{ name: 'bad', url: 'vcn://x' }] });
  await again.signal('SIGHUP');
  const stillOk = await again.waitForList('the broken reload logged', () => again.logs().some((l) => String(l.msg).includes('configuration not reloaded')));
  expect(stillOk.some((r) => r.target === 'synth2' && r.state === 'recording')).toBe(true);
  expect(await again.signal('SIGTERM')).toBe(0);
  await x.stop();
}, testTimeoutFor(6));
