/**
 * The remote clipboard against a real server (issue 15, item 7): someone copies text on an Xvnc desktop
 * (xclip sets the CLIPBOARD selection; Xvnc sends it to clients as ServerCutText) while `deskrec record
 * --raw` runs. session.deskcap must hold zeros of the text's length in its place — and the text itself
 * with `--raw-clipboard` — and the zeroed capture must replay to the live recording's frames.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
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

/** Where a ServerCutText carrying SECRET's length starts in `bytes`, or -1. */
function cutTextAt(bytes: Buffer): number {
  const head = Buffer.alloc(8);
  head[0] = 3;
  head.writeUInt32BE(SECRET.length, 4);
  return bytes.indexOf(head);
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
      return cutTextAt(received(c)) >= 0 ? true : undefined;
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
  const at = cutTextAt(bytes);
  expect([...bytes.subarray(at + 8, at + 8 + SECRET.length)]).toEqual(new Array<number>(SECRET.length).fill(0));
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
  expect(received(cap).includes(Buffer.from(SECRET, 'latin1'))).toBe(true);
  expect(cap.end?.clipboard).toMatchObject({ kept: true });
}, testTimeoutFor(2));
