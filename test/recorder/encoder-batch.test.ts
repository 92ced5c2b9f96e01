/**
 * Frames go to the encode worker in batches (src/recorder/encoder-client.ts): a batch leaves when it is full,
 * when someone needs its frames (flush, close, sendNow), or after its longest wait; replies come back in
 * order; a failure in the middle of a batch keeps the frames coded before it and fails the rest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EncoderClient } from '../../src/recorder/encoder-client';
import type { EncodeInput, EncoderConfig } from '../../src/recorder/encoders/backend';
import { failingOpenh264Backend } from '../helpers/record';

const W = 64;
const H = 48;
const config: EncoderConfig = { width: W, height: H, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: true };
/** Longer than any test may take: a batch that waited for its timer would fail the test by its timeout. */
const NEVER_MS = 10 * 60 * 1000;

/** Frame `i`: a grey gradient with a small square that moves (a P picture, not a scene change), as one whole patch. */
function frame(i: number): EncodeInput {
  const data = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      const inSquare = x >= 4 + 2 * i && x < 12 + 2 * i && y >= 8 && y < 16;
      data[o] = inSquare ? 250 : x * 2;
      data[o + 1] = inSquare ? 40 : y * 3;
      data[o + 2] = inSquare ? 40 : 128;
      data[o + 3] = 255;
    }
  }
  return { patches: [{ rect: { x: 0, y: 0, width: W, height: H }, data }], t_ms: i * 100, forceKey: i === 0 };
}

const clients: EncoderClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function client(limits: { ms: number; frames: number; bytes: number }, backend = 'openh264'): EncoderClient {
  const c = new EncoderClient(backend, config, limits);
  clients.push(c);
  return c;
}

test('a full batch goes at once; its frames come back in order, each with the time the encoder spent on it', async () => {
  const c = client({ ms: NEVER_MS, frames: 3, bytes: Infinity });
  await c.start();
  const results = await Promise.all([0, 1, 2].map((i) => c.encode(frame(i))));
  expect(results.map((r) => r.unit?.t_ms)).toEqual([0, 100, 200]);
  expect(results.map((r) => r.unit?.key)).toEqual([true, false, false]);
  for (const r of results) expect(r.seconds).toBeGreaterThan(0);
});

test('a batch that is not full goes on flush(), on sendNow() and by bytes, without waiting for its timer', async () => {
  const c = client({ ms: NEVER_MS, frames: 100, bytes: 3 * W * H * 4 });
  await c.start();
  const first = [c.encode(frame(0)), c.encode(frame(1))];
  await c.flush();
  expect((await Promise.all(first)).map((r) => r.unit?.t_ms)).toEqual([0, 100]);
  const second = c.encode(frame(2));
  c.sendNow();
  expect((await second).unit?.t_ms).toBe(200);
  // The third whole picture reaches the byte limit: the batch goes by itself.
  const third = [3, 4, 5].map((i) => c.encode(frame(i)));
  expect((await Promise.all(third)).map((r) => r.unit?.t_ms)).toEqual([300, 400, 500]);
});

test('a batch that is not full goes after its longest wait', async () => {
  const c = client({ ms: 20, frames: 100, bytes: Infinity });
  await c.start();
  expect((await c.encode(frame(0))).unit?.key).toBe(true);
});

test('a failure in the middle of a batch: the frames before it come back, it and the rest fail with its error', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-batch-'));
  dirs.push(dir);
  const backend = failingOpenh264Backend(dir, 2);
  const c = client({ ms: NEVER_MS, frames: 3, bytes: Infinity }, backend);
  await c.start();
  const settled = await Promise.allSettled([0, 1, 2].map((i) => c.encode(frame(i))));
  expect(settled[0]).toMatchObject({ status: 'fulfilled', value: { unit: { t_ms: 0, key: true } } });
  expect(settled.slice(1).map((r) => r.status)).toEqual(['rejected', 'rejected']);
  for (const r of settled.slice(1)) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/injected failure/);
  // Later frames fail at once with the same error.
  await expect(c.encode(frame(3))).rejects.toThrow(/injected failure/);
});
