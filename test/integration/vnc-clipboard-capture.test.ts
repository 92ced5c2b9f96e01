/**
 * The remote clipboard against a real server (issue 15, item 7): someone copies text on an Xvnc desktop
 * (xclip sets the CLIPBOARD selection; Xvnc sends it to deskrec, which lists the Extended Clipboard, as an
 * unsolicited provide: a ServerCutText with a negative length and zlib data) while `deskrec record --raw`
 * runs. session.deskcap must hold zeros in place of that payload — and the text itself with
 * `--raw-clipboard` — and the zeroed capture must replay to the live recording's frames.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { KIND } from '../../src/capture/deskcap/format';
import { parseCapture, readCapture, type Capture } from '../../src/capture/deskcap/reader';
import { requireTool } from '../helpers/media';
import { startRecording, waitForFrames } from '../helpers/record';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc } from '../helpers/servers/xvnc';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();
beforeAll(() => { requireTool('xclip'); });

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const SECRET = 'copied on the remote: TOPSECRET-4711';

/** Every byte received on stream 0 (the file may still be growing: what is complete of it). */
function received(c: Capture): Buffer {
  return Buffer.concat(c.records.filter((r) => r.kind === KIND.IN && r.stream === 0).map((r) => r.data));
}

/**
 * Where an Extended Clipboard provide starts in `bytes` (ServerCutText with a negative length: U8 3, 3
 * padding, S32 −len), or -1; with `zeroed` its whole payload (flags and zlib data) must be zeros, else its
 * flags must be provide|text. The provide is the only extended message longer than 12 bytes Xvnc sends.
 */
function providedAt(bytes: Buffer, zeroed: boolean): number {
  for (let i = bytes.indexOf(Buffer.from([3, 0, 0, 0, 0xff])); i >= 0; i = bytes.indexOf(Buffer.from([3, 0, 0, 0, 0xff]), i + 1)) {
    if (i + 12 > bytes.length) break;
    const len = -bytes.readInt32BE(i + 4);
    if (len <= 8 || len > 4096 || i + 8 + len > bytes.length) continue;
    const payload = bytes.subarray(i + 8, i + 8 + len);
    if (zeroed ? payload.every((b) => b === 0) : payload.readUInt32BE(0) === ((1 << 28) | 1)) return i;
  }
  return -1;
}

/** Records Xvnc with --raw (and `extra`) while the clipboard gets SECRET; the recording directory. */
async function recordCopy(extra: string[]): Promise<string> {
  const server = await startXvnc({ width: 320, height: 200, security: 'None' });
  try {
    const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--raw', ...extra]);
    await waitForFrames(rec, 1);
    const text = path.join(mkdtempSync(path.join(tmpdir(), 'deskrec-xclip-')), 'text');
    writeFileSync(text, SECRET);
    server.run('xclip', ['-selection', 'clipboard', '-i', text]);
    // The capture writes received bytes within a second of the client parsing them: wait for the message.
    const file = path.join(rec.dir, 'session.deskcap');
    await waitFor('the ServerCutText in session.deskcap', () => {
      let c: Capture;
      try {
        c = parseCapture(new Uint8Array(readFileSync(file)), file);
      } catch {
        return undefined;
      }
      return providedAt(received(c), !extra.includes('--raw-clipboard')) >= 0 ? true : undefined;
    });
    expect(await rec.stop()).toBe(0);
    return rec.dir;
  } finally {
    await server.stop();
  }
}

test('the copied text is zeros in session.deskcap, and the capture replays to the live frames', async () => {
  const dir = await recordCopy([]);
  const capFile = path.join(dir, 'session.deskcap');
  const cap = readCapture(capFile);
  const bytes = received(cap);
  expect(bytes.includes(Buffer.from(SECRET, 'latin1'))).toBe(false);
  expect(providedAt(bytes, true)).toBeGreaterThanOrEqual(0);
  expect(providedAt(bytes, false)).toBe(-1);
  expect(cap.end?.clipboard).toMatchObject({ kept: false });
  expect(cap.end?.clipboard?.transfers).toBeGreaterThanOrEqual(1);

  const replayDir = path.join(dir, 'replayed');
  execFileSync(process.execPath, [BIN, 'replay', capFile, '--capture', replayDir, '--format', 'png', '--quiet']);
  expect(readFileSync(path.join(replayDir, 'frames', 'frames.jsonl'), 'utf8')).toBe(readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8'));
  expect(execFileSync(process.execPath, [BIN, 'inspect', capFile]).toString()).toMatch(/clipboard\s+\d+ transfers?, \d+ bytes, recorded as zeros/);
}, testTimeoutFor(2));

test('--raw-clipboard keeps the copied text', async () => {
  const dir = await recordCopy(['--raw-clipboard']);
  const cap = readCapture(path.join(dir, 'session.deskcap'));
  const bytes = received(cap);
  const at = providedAt(bytes, false);
  const text = zlib.inflateSync(bytes.subarray(at + 12, at + 8 - bytes.readInt32BE(at + 4)), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  expect(text.subarray(4).toString('utf8')).toBe(`${SECRET}\0`);
  expect(cap.end?.clipboard).toMatchObject({ kept: true });
}, testTimeoutFor(2));
