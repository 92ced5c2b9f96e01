/**
 * Capture and replay against a real server: a live Xvnc recording made with --raw replays to
 * byte-identical PNG frames with identical timestamps and damage; inspect reports what the capture holds;
 * no secret is in the capture.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { readCapture } from '../../src/capture/deskcap/reader';
import { KIND } from '../../src/capture/deskcap/format';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc } from '../helpers/servers/xvnc';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { startRecording, waitForFrames } from '../helpers/record';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

test('a live --raw recording replays to byte-identical PNG frames with identical timestamps', async () => {
  const server = await startXvnc({ width: 640, height: 400, security: 'VncAuth', password: 'sekr1t!' });
  let liveDir = '';
  try {
    await startScrollingXterm(server, { geometry: '60x16+8+8' });
    await startXclock(server, { geometry: '120x120+480+16' });
    const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--raw', '--vnc-encodings', 'tight,zrle,hextile,copyrect'],
      { DESKREC_VNC_PASSWORD: 'sekr1t!' });
    // More than 10 lines of frames.jsonl are expected below (10 frames and the final newline).
    await waitForFrames(rec, 10);
    expect(await rec.stop()).toBe(0);
    liveDir = rec.dir;
  } finally {
    await server.stop();
  }
  const capFile = path.join(liveDir, 'session.deskcap');
  const cap = readCapture(capFile);
  expect(cap.header).toMatchObject({ protocol: 'vnc', credentials: { password: true, username: false } });
  expect(cap.truncated).toBeNull();
  expect(cap.end?.reason).toBe('signal');
  // The challenge response (the client's one 16-byte write before ClientInit: after the security type, on the
  // 16-byte challenge) went out zeroed. Later 16-byte writes may be messages (the Extended Clipboard caps).
  const outs = cap.records.filter((r) => r.kind === KIND.OUT);
  const at = outs.findIndex((r) => r.data.length === 16);
  // Behind the version (12 bytes) and the security type (1).
  expect(at).toBeGreaterThanOrEqual(2);
  expect(at).toBeLessThan(4);
  expect(Array.from(outs[at]?.data ?? [1]).every((b) => b === 0)).toBe(true);
  expect(readFileSync(capFile).includes(Buffer.from('sekr1t!'))).toBe(false);

  const replayDir = path.join(liveDir, 'replayed');
  execFileSync(process.execPath, [BIN, 'replay', capFile, '--capture', replayDir, '--format', 'png', '--quiet']);
  const live = readFileSync(path.join(liveDir, 'frames', 'frames.jsonl'), 'utf8');
  const again = readFileSync(path.join(replayDir, 'frames', 'frames.jsonl'), 'utf8');
  expect(again.split('\n').length).toBeGreaterThan(10);
  expect(again).toBe(live);
  const names = readdirSync(path.join(liveDir, 'frames')).filter((f) => f.endsWith('.png')).sort();
  expect(readdirSync(path.join(replayDir, 'frames')).filter((f) => f.endsWith('.png')).sort()).toEqual(names);
  for (const n of names) {
    expect(readFileSync(path.join(replayDir, 'frames', n)).equals(readFileSync(path.join(liveDir, 'frames', n)))).toBe(true);
  }

  const report = JSON.parse(execFileSync(process.execPath, [BIN, 'inspect', capFile, '--json']).toString()) as {
    protocol: string; frames: number; sizes: { width: number; height: number }[]; messages: Record<string, number>; rectangles: Record<string, number>; decodeError: string | null;
  };
  expect(report.protocol).toBe('vnc');
  expect(report.decodeError).toBeNull();
  // Every frame the live session's source delivered (the END record counts them) decodes again; the
  // recorder wrote at most one per frame (fps-max merges the frames of one 1/30 s slot into one).
  expect(report.frames).toBeGreaterThanOrEqual(cap.end?.frames ?? Infinity);
  expect(cap.end?.frames ?? -Infinity).toBeGreaterThanOrEqual(names.length);
  expect(report.sizes).toEqual([{ t_ms: expect.any(Number) as unknown, width: 640, height: 400 }]);
  expect(report.messages.FramebufferUpdate).toBeGreaterThan(5);
  expect(Object.keys(report.rectangles).length).toBeGreaterThan(1);
  const table = execFileSync(process.execPath, [BIN, 'inspect', capFile]).toString();
  expect(table).toMatch(/FramebufferUpdate/);
}, testTimeoutFor(2));
