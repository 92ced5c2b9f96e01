/**
 * The server's updates decoded by noVNC 1.7's OWN decoders (node_modules/@novnc/novnc core/decoders/zrle.js
 * with its pako inflater, and raw.js), run in a child Node process because they are ES modules. The
 * connection is driven as noVNC drives it (its SetPixelFormat and SetEncodings), the pixel rectangles of
 * every update are fed in order to one ZRLEDecoder (one persistent inflate stream, which fails on a
 * rectangle that does not end on a sync flush) and the framebuffer noVNC would show is compared with the
 * picture after each update.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Rect } from '../../../../src/capture/rect';
import { RGBX_FORMAT } from '../../../../src/protocol/rfb/pixel-format';
import { RfbServerConnection } from '../../../../src/protocol/rfb/server/connection';
import { ByteReader } from '../../../../src/wire/reader';
import { blank, crop, differing, fill, gradient, noise, textLike, type TestPicture } from './pictures';
import { ascii, concat, setEncodings, setPixelFormat, updateRequest } from './wire';

const NOVNC_CORE = path.resolve(__dirname, '../../../../node_modules/@novnc/novnc/core');
/** noVNC 1.7's SetEncodings (core/rfb.js _sendEncodings without H.264). */
const NOVNC_ENCODINGS = [1, 7, -260, 16, 21, 5, 2, 6, 0, -26, -254, -223, -224, -258, -261, -308, -309, -312, -313, -307, 0xc0a1e5ce | 0, -316, 0x574d5664, -239];

/** Runs noVNC's decoders over the updates' pixel rectangles; prints the framebuffer after each update. */
const SCRIPT = `
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const core = process.argv[2];
const { default: ZRLEDecoder } = await import(pathToFileURL(core + '/decoders/zrle.js').href);
const { default: RawDecoder } = await import(pathToFileURL(core + '/decoders/raw.js').href);
const job = JSON.parse(readFileSync(0, 'utf8'));
const W = job.width;
const fb = new Uint8Array(W * job.height * 4);
const display = {
  blitImage(x, y, w, h, arr, offset) {
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
      const s = offset + (r * w + c) * 4, d = ((y + r) * W + x + c) * 4;
      fb[d] = arr[s]; fb[d + 1] = arr[s + 1]; fb[d + 2] = arr[s + 2]; fb[d + 3] = arr[s + 3];
    }
  },
  fillRect(x, y, w, h, color) {
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
      const d = ((y + r) * W + x + c) * 4;
      fb[d] = color[0]; fb[d + 1] = color[1]; fb[d + 2] = color[2]; fb[d + 3] = 255;
    }
  },
};
// The part of noVNC's Websock receive queue the decoders use.
function sock(bytes) {
  let pos = 0;
  return {
    rQwait(msg, num) { return bytes.length - pos < num; },
    rQshift32() { const v = ((bytes[pos] << 24) | (bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3]) >>> 0; pos += 4; return v; },
    rQshiftBytes(len, copy) { const v = bytes.subarray(pos, pos + len); pos += len; return copy === false ? v : v.slice(); },
    left() { return bytes.length - pos; },
  };
}
const zrle = new ZRLEDecoder();
const raw = new RawDecoder();
const out = [];
for (const update of job.updates) {
  for (const r of update) {
    const s = sock(new Uint8Array(Buffer.from(r.data, 'base64')));
    const dec = r.encoding === 16 ? zrle : raw;
    if (!dec.decodeRect(r.x, r.y, r.width, r.height, s, display, 24)) throw new Error('noVNC wanted more bytes');
    if (s.left() !== 0) throw new Error(s.left() + ' bytes left over');
  }
  out.push(Buffer.from(fb).toString('base64'));
}
process.stdout.write(JSON.stringify(out));
`;

interface PixelRect { x: number; y: number; width: number; height: number; encoding: number; data: string }

/** Splits a FramebufferUpdate into its pixel rectangles (payloads as noVNC's decoders read them). */
function pixelRects(msg: Uint8Array): PixelRect[] {
  const r = new ByteReader(msg, 0, 'update');
  expect(r.u8()).toBe(0);
  r.skip(1);
  const n = r.u16();
  const out: PixelRect[] = [];
  for (let i = 0; i < n; i++) {
    const h = { x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), encoding: r.s32() };
    const start = r.pos;
    switch (h.encoding) {
      case 16:
        r.skip(r.u32());
        break;
      case 0:
        r.skip(h.width * h.height * 4);
        break;
      case -308:
        r.skip(3 + 16 * r.u8());
        continue;
      case -258:
        continue;
      case 0x574d5664:
        r.skip(2 + h.width * h.height * 4);
        continue;
      default:
        throw new Error(`unexpected encoding ${h.encoding}`);
    }
    out.push({ ...h, data: Buffer.from(msg.subarray(start, r.pos)).toString('base64') });
  }
  expect(r.remaining).toBe(0);
  return out;
}

test('noVNC 1.7\'s ZRLE and Raw decoders rebuild every update exactly', () => {
  const W = 300;
  const H = 200;
  const pic: TestPicture = blank(W, H);
  textLike(pic, { x: 0, y: 0, width: W, height: 120 }, 3);
  gradient(pic, { x: 0, y: 120, width: 150, height: 80 });
  noise(pic, { x: 150, y: 120, width: 150, height: 80 }, 4);
  const sent: Uint8Array[] = [];
  const conn = new RfbServerConnection({ name: 'noVNC', width: W, height: H, handlers: { send: (b) => { sent.push(b); } } });
  conn.start();
  conn.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)]));
  // What noVNC sends after ServerInit (core/rfb.js _negotiateServerInit): its pixel format, encodings, a full request.
  conn.receive(concat([setPixelFormat(RGBX_FORMAT), setEncodings(NOVNC_ENCODINGS), updateRequest(false, 0, 0, W, H)]));
  conn.setCursor({ rgba: new Uint8Array(4 * 4 * 4).fill(200), width: 4, height: 4, hotX: 0, hotY: 0 });
  sent.length = 0;
  const updates: PixelRect[][] = [];
  const expected: Uint8Array[] = [];
  const step = (rects: Rect[], draw: () => void): void => {
    draw();
    conn.damage(rects);
    // noVNC asks again after each update.
    conn.receive(updateRequest(true, 0, 0, W, H));
    expect(conn.flush(pic)).toBe(true);
    const msg = sent.pop();
    if (msg === undefined) throw new Error('no update');
    updates.push(pixelRects(msg));
    expected.push(crop(pic, { x: 0, y: 0, width: W, height: H }));
  };
  // The answer to the full request (ExtendedDesktopSize, cursor, key-event ack; no pixels), then the picture.
  expect(conn.flush(pic)).toBe(true);
  expect(pixelRects(sent.pop() ?? new Uint8Array(0))).toEqual([]);
  step([], () => undefined);
  step([{ x: 10, y: 10, width: 201, height: 57 }], () => { textLike(pic, { x: 10, y: 10, width: 201, height: 57 }, 9); });
  step([{ x: 299, y: 0, width: 1, height: 1 }], () => { fill(pic, { x: 299, y: 0, width: 1, height: 1 }, [255, 0, 255]); });
  step([{ x: 0, y: 0, width: W, height: H }], () => { noise(pic, { x: 0, y: 0, width: W, height: H }, 5); });
  const checks = { x: 5, y: 150, width: 37, height: 20 };
  step([checks], () => {
    for (let y = 0; y < checks.height; y++) {
      for (let x = 0; x < checks.width; x++) fill(pic, { x: checks.x + x, y: checks.y + y, width: 1, height: 1 }, (x + 2 * y) % 3 === 0 ? [0, 0, 0] : (x + y) % 2 === 0 ? [9, 99, 199] : [255, 255, 255]);
    }
  });
  expect(updates.flat().map((r) => r.encoding)).toContain(0);
  expect(updates.flat().map((r) => r.encoding)).toContain(16);

  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-novnc-'));
  try {
    const script = path.join(dir, 'decode.mjs');
    writeFileSync(script, SCRIPT);
    const out = execFileSync(process.execPath, [script, NOVNC_CORE], { input: JSON.stringify({ width: W, height: H, updates }), maxBuffer: 64 * 1024 * 1024 });
    const shown = (JSON.parse(out.toString()) as string[]).map((b) => new Uint8Array(Buffer.from(b, 'base64')));
    expect(shown.length).toBe(expected.length);
    shown.forEach((fb, i) => { expect([i, differing(fb, expected[i] as Uint8Array)]).toEqual([i, 0]); });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
