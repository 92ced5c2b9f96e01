/**
 * The session layer on the synthetic desktop (no server needed): fan-out to watchers with the drop policy,
 * snapshots, a session that only watches (nothing recorded), keyframes on request, a failing watcher that
 * is dropped while the rest goes on, and input refused with a typed error where the source has none.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { InputError, openSource, Session, type Frame, type FrameWatcher } from '../../src/index';

const URL = 'test://desktop?size=320x240&fps=30&seed=7';

class Keep implements FrameWatcher {
  frames: Frame[] = [];
  onFrame(f: Frame): void {
    const row = f.width * 4;
    const rgba = new Uint8Array(row * f.height);
    for (let y = 0; y < f.height; y++) rgba.set(f.rgba.subarray(y * f.stride, y * f.stride + row), y * row);
    this.frames.push({ ...f, rgba, stride: row, damage: [...f.damage] });
  }
}

test('a watch-only session delivers every frame to each watcher and records nothing', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-session-'));
  const session = new Session(openSource(URL, { speed: 'max' }), { durationMs: 2000 });
  const w1 = new Keep();
  const w2 = new Keep();
  session.watch(w1);
  session.watch(w2);
  await session.start();
  const result = await session.done;
  expect(result.recording).toBeNull();
  expect(result.end.reason).toBe('duration');
  expect(readdirSync(dir)).toEqual([]);
  expect(w1.frames.length).toBeGreaterThan(10);
  expect(w2.frames.length).toBe(w1.frames.length);
  // The snapshot is the picture of the last frame.
  const snap = session.snapshot();
  const last = w1.frames[w1.frames.length - 1];
  expect(snap?.t_ms).toBe(last?.t_ms);
  expect(Buffer.compare(Buffer.from(snap?.rgba ?? []), Buffer.from(last?.rgba ?? []))).toBe(0);
  expect(session.stats().recording).toBeNull();
  expect(session.state).toBe('ended');
});

test('a failing watcher is dropped and logged; the other watcher and the recording go on', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-session-'));
  const logs: string[] = [];
  const session = new Session(openSource(URL, { speed: 'max' }), { durationMs: 1500, record: { dir, format: 'png' }, log: (l) => logs.push(l) });
  let calls = 0;
  session.watch({ onFrame: () => { calls++; if (calls === 3) throw new Error('watcher bug'); } });
  const good = new Keep();
  session.watch(good);
  await session.start();
  const result = await session.done;
  expect(calls).toBe(3);
  expect(logs.some((l) => l.includes('watcher bug'))).toBe(true);
  expect(good.frames.length).toBeGreaterThan(10);
  expect(result.recording?.stats.pngFrames).toBeGreaterThan(10);
});

test('a keyframe on request: the next encoded frame is a keyframe whatever the interval', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-session-'));
  const session = new Session(openSource(URL, { speed: 'max' }), { durationMs: 3000, record: { dir, keyframeIntervalS: 3600 } });
  let n = 0;
  session.watch({ onFrame: () => { n++; if (n === 20) session.requestKeyframe(); } });
  await session.start();
  const result = await session.done;
  const seg = result.recording?.segments[0];
  expect(seg?.kind).toBe('mp4');
  // The first frame of the segment, and the one asked for.
  expect(seg?.keyframes).toBe(2);
});

test('input on a source without a way back is a typed error; a stop by AbortSignal ends the session', async () => {
  const abort = new AbortController();
  const session = new Session(openSource(URL), { signal: abort.signal });
  const w = new Keep();
  session.watch(w);
  await session.start();
  expect(() => { session.input.key({ keysym: 0x41, down: true }); }).toThrow(InputError);
  expect(session.input.capabilities().keys).toBe(false);
  await new Promise<void>((resolve) => {
    if (session.state === 'live') resolve();
    session.on('state', (s) => { if (s === 'live') resolve(); });
  });
  abort.abort();
  const result = await session.done;
  expect(result.end.reason).toBe('signal');
  expect(w.frames.length).toBeGreaterThan(0);
});

test('a recording directory that cannot be made fails start() with a SinkError before anything runs', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'deskrec-session-')), 'a-file');
  writeFileSync(file, 'not a directory');
  const session = new Session(openSource(URL), { record: { dir: path.join(file, 'sub') } });
  await expect(session.start()).rejects.toMatchObject({ name: 'SinkError', code: 'DIR_NOT_WRITABLE' });
});

test('a session that keeps no picture records the same frames, has no snapshot and refuses watchers', async () => {
  const run = async (keepPicture: boolean): Promise<{ session: Session; frames: number; dir: string }> => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-session-'));
    const session = new Session(openSource(URL, { speed: 'max' }), { durationMs: 1500, record: { dir, format: 'png' }, keepPicture });
    await session.start();
    const result = await session.done;
    return { session, frames: result.recording?.stats.pngFrames ?? 0, dir };
  };
  const kept = await run(true);
  const lean = await run(false);
  expect(lean.frames).toBeGreaterThan(10);
  expect(lean.frames).toBe(kept.frames);
  // The PNGs are the same pictures: the recording never leaned on the session's copy.
  const pngs = readdirSync(path.join(lean.dir, 'frames')).filter((f) => f.endsWith('.png')).sort();
  expect(pngs).toEqual(readdirSync(path.join(kept.dir, 'frames')).filter((f) => f.endsWith('.png')).sort());
  for (const f of pngs) {
    expect(readFileSync(path.join(lean.dir, 'frames', f)).equals(readFileSync(path.join(kept.dir, 'frames', f)))).toBe(true);
  }
  expect(lean.session.snapshot()).toBeNull();
  expect(lean.session.currentFrame()).toBeNull();
  expect(kept.session.snapshot()).not.toBeNull();
  const fresh = new Session(openSource(URL), { keepPicture: false });
  let refused: unknown = null;
  try {
    fresh.watch(new Keep());
  } catch (e) {
    refused = e;
  }
  expect(refused).toMatchObject({ code: 'NO_PICTURE_KEPT' });
});
