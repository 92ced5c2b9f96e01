/**
 * The library API in one process, as the viewer and the daemon will use it: three sessions at once through
 * src/index.ts — two live Xvnc servers and one capture replay — each with two frame watchers (one of which
 * falls behind on purpose and must then get the whole current picture), a snapshot taken mid-session and
 * checked against the server's own screenshot, input sent through the API (pointer and keys into an xterm
 * whose shell writes what it reads to a file), and the sessions stopped independently while the others go on.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUTTON, InputError, openCapture, openSource, Session, type Frame, type FrameWatcher } from '../../src/index';
import { probeStream } from '../helpers/media';
import { differingPixels } from '../helpers/record';
import { pollUntil, requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { startScrollingXterm, startXclock, waitForWindow } from '../helpers/servers/x11-clients';
import { waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

const FIXTURES = path.resolve(__dirname, '../../fixtures/vnc');

/** A watcher that counts frames and remembers the last one it saw (copied: pixels are valid only during the call). */
class CountingWatcher implements FrameWatcher {
  frames = 0;
  wholeFrames = 0;
  last: { width: number; height: number; rgba: Uint8Array } | null = null;
  paused = false;

  ready(): boolean {
    return !this.paused;
  }

  onFrame(f: Frame): void {
    this.frames++;
    const whole = f.damage.length === 1 && f.damage[0]?.width === f.width && f.damage[0].height === f.height;
    if (whole) this.wholeFrames++;
    const row = f.width * 4;
    const rgba = new Uint8Array(row * f.height);
    for (let y = 0; y < f.height; y++) rgba.set(f.rgba.subarray(y * f.stride, y * f.stride + row), y * row);
    this.last = { width: f.width, height: f.height, rgba };
  }
}

function tmp(name: string): string {
  return mkdtempSync(path.join(tmpdir(), `deskrec-api-${name}-`));
}

/** Types `text` through the session's input as keysym presses (ASCII keysyms are the character codes). */
function typeKeys(session: Session, text: string): void {
  for (const ch of text) {
    const keysym = ch === '\n' ? 0xff0d : ch.charCodeAt(0);
    session.input.key({ keysym, down: true });
    session.input.key({ keysym, down: false });
  }
}

/** Waits until `watcher` has seen more than `n` frames. */
function framesBeyond(watcher: CountingWatcher, n: number, what: string): Promise<number> {
  return pollUntil(`${what}: more than ${n} frames`, 60000, () => Promise.resolve(watcher.frames > n ? watcher.frames : undefined), 50);
}

test('three sessions in one process: watchers, snapshot, input, independent stops', async () => {
  const typed = path.join(tmp('typed'), 'typed.txt');
  const xa: XvncServer = await startXvnc({ width: 640, height: 400, security: 'None' });
  const xb: XvncServer = await startXvnc({ width: 640, height: 400, security: 'None' });
  // Server A: an xterm whose shell writes every line typed into it to a file (keys from the API land there).
  xa.run(requireCommand('xterm'), ['-geometry', '60x10+20+20', '-fa', '', '-fn', 'fixed', '-class', 'DeskrecInput',
    '-e', 'sh', '-c', `exec cat > ${typed}`]);
  await waitForWindow(xa, 'DeskrecInput');
  await startXclock(xa, { geometry: '100x100+500+20' });
  // Server B: a scrolling xterm and a clock; its picture is compared with xwd after the clients are frozen.
  await startScrollingXterm(xb, { geometry: '60x16+8+8' });
  await startXclock(xb, { geometry: '120x120+480+16' });

  const dirA = tmp('a');
  const dirB = tmp('b');
  const dirR = tmp('r');
  const logs: string[] = [];
  const log = (l: string): void => { logs.push(l); };
  const a = new Session(openSource(`vnc://127.0.0.1:${xa.port}`), { record: { dir: dirA, format: 'mp4' }, log });
  const b = new Session(openSource(`vnc://127.0.0.1:${xb.port}`, { vncEncodings: 'zrle,copyrect' }),
    { record: { dir: dirB, format: 'png', cursor: 'none' }, log });
  const replayed = openCapture(path.join(FIXTURES, 'xvnc-default.deskcap'), { speed: 'realtime' });
  const r = new Session(replayed.source, { record: { dir: dirR, format: 'mp4' }, log });
  const states: string[] = [];
  a.on('state', (s) => { states.push(`a:${s}`); });

  const [a1, a2, b1, b2, r1, r2] = [0, 1, 2, 3, 4, 5].map(() => new CountingWatcher());
  if (a1 === undefined || a2 === undefined || b1 === undefined || b2 === undefined || r1 === undefined || r2 === undefined) throw new Error('watchers');
  // Watchers may join before the start (and get the whole picture first when they join later).
  const subs = [a.watch(a1), a.watch(a2), b.watch(b1), b.watch(b2), r.watch(r1), r.watch(r2)];
  expect(a.state).toBe('starting');
  await Promise.all([a.start(), b.start(), r.start()]);

  // Every session delivers to both of its watchers.
  await Promise.all([framesBeyond(a1, 2, 'a1'), framesBeyond(b1, 5, 'b1'), framesBeyond(r1, 2, 'r1')]);
  expect(a.state).toBe('live');
  expect(states).toContain('a:live');

  // A watcher that is not ready misses frames, then gets the whole current picture at once.
  const b2Whole = b2.wholeFrames;
  b2.paused = true;
  const b1Before = b1.frames;
  await framesBeyond(b1, b1Before + 3, 'b1 while b2 is paused');
  expect(subs[3]?.skipped).toBeGreaterThan(0);
  b2.paused = false;
  subs[3]?.resume();
  expect(b2.wholeFrames).toBe(b2Whole + 1);

  // Input: the pointer moves where we say (xdotool reads it back), keys reach the xterm's shell.
  const caps = a.input.capabilities();
  expect(caps.keys).toBe(true);
  expect(caps.absolutePointer).toBe(true);
  a.input.pointer(200, 60, 0);
  a.input.pointer(200, 60, BUTTON.LEFT);
  a.input.pointer(200, 60, 0);
  const where = await pollUntil('pointer at 200,60', 20000, async () => {
    const out = (await runTool(requireCommand('xdotool'), ['getmouselocation', '--shell'], { env: xa.env, timeoutMs: 5000 })).stdout.toString();
    return /X=200\n/.test(out) && /Y=60\n/.test(out) ? out : undefined;
  }, 100);
  expect(where).toMatch(/X=200/);
  typeKeys(a, 'deskrec typed this\n');
  const text = await pollUntil('typed text in the file', 30000, () => {
    const t = existsSync(typed) ? readFileSync(typed, 'utf8') : '';
    return Promise.resolve(t.includes('\n') ? t : undefined);
  }, 100);
  expect(text).toBe('deskrec typed this\n');

  // A replay has no way back to the remote: a typed error, and the session goes on.
  expect(() => { r.input.key({ keysym: 0x61, down: true }); }).toThrow(InputError);
  expect(() => { a.input.pointer(Number.NaN, 0, 0); }).toThrow(InputError);

  // Snapshot mid-session: freeze B's clients, wait until the screen has settled and B's watcher has caught
  // up with it (a quiet spell would only hope for that: a loaded machine can decode the last update later),
  // then compare the snapshot with xwd.
  xb.pauseClients();
  const shot = await waitForStillScreen(() => xb.screenshotRgba());
  await waitFor('B\'s watcher to show the frozen screen', () => {
    const last = b1.last;
    return last !== null && last.width === shot.width && last.height === shot.height && differingPixels(last.rgba, shot.rgba) === 0 ? true : undefined;
  }, { detail: () => `${b1.frames} frames; the newest differs in ${b1.last === null ? '-' : differingPixels(b1.last.rgba, shot.rgba)} pixels` });
  const snap = b.snapshot();
  if (snap === null) throw new Error('no snapshot');
  expect([snap.width, snap.height]).toEqual([shot.width, shot.height]);
  expect(differingPixels(snap.rgba, shot.rgba)).toBe(0);
  // Both watchers hold the same picture as the snapshot.
  expect(differingPixels(b1.last?.rgba ?? new Uint8Array(0), snap.rgba)).toBe(0);
  expect(differingPixels(b2.last?.rgba ?? new Uint8Array(0), snap.rgba)).toBe(0);

  // Stop B alone: A and the replay go on.
  const bResult = await b.stop();
  expect(b.state).toBe('ended');
  expect(bResult.end.reason).toBe('signal');
  expect(bResult.recording?.segments[0]?.kind).toBe('png');
  const aFrames = a1.frames;
  typeKeys(a, 'more\n');
  await framesBeyond(a1, aFrames, 'a after b stopped');
  await pollUntil('second line typed', 30000, () => Promise.resolve(readFileSync(typed, 'utf8').endsWith('more\n') ? true : undefined), 100);

  // The replay ends by itself at the end of its capture; its last frame is the capture's last picture.
  const rResult = await r.done;
  expect(rResult.recording?.segments[0]?.file).toBe('display.mp4');
  const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'xvnc-default.manifest.json'), 'utf8')) as { frames: { sha256: string }[] };
  const lastSha = manifest.frames[manifest.frames.length - 1]?.sha256;
  const rSnap = r.snapshot();
  expect(rSnap === null ? null : createHash('sha256').update(rSnap.rgba).digest('hex')).toBe(lastSha);
  expect(r1.frames).toBe(r2.frames);
  expect(() => r.watch(new CountingWatcher())).toThrow(/SESSION_ENDED|ended/);

  // A goes on until stopped; its MP4 plays.
  expect(a.state).toBe('live');
  const aResult = await a.stop();
  expect(aResult.recording?.segments[0]?.file).toBe('display.mp4');
  const probe = probeStream(path.join(dirA, 'display.mp4'));
  expect(probe.codec_name).toBe('h264');
  expect(logs).toEqual([]);
  await Promise.all([xa.stop(), xb.stop()]);
}, 240000);
