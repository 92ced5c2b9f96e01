/**
 * The encode worker: hosts one encoder backend for one recording, so protocol I/O on the main thread never
 * waits for encoding. Messages are strictly request/response in order; any failure is reported once and
 * the worker stops accepting frames (the recorder then falls back to PNG frames).
 */
import { parentPort } from 'node:worker_threads';
import { describeError, DeskrecError } from '../errors';
import type { AccessUnit, BackendModule, EncodeInput, EncoderBackend, EncoderConfig } from './encoders/backend';
import { createFfmpegBackend } from './encoders/ffmpeg';
import { parseFfmpegSpec } from './encoders/ffmpeg-args';

/** One frame of a batch, with its request number. */
export interface FrameRequest {
  seq: number;
  input: EncodeInput;
}

/** One coded frame of a batch: its request number, its access unit (none: the encoder dropped it), seconds spent coding it. */
export interface FrameReply {
  seq: number;
  unit: AccessUnit | null;
  seconds: number;
}

/**
 * Messages from the recorder to the worker. Frames come in batches (encoder-client.ts says why): the worker
 * codes them in order and answers each batch with one message.
 */
export type ToWorker =
  | { type: 'init'; backend: string; config: EncoderConfig }
  | { type: 'frames'; frames: FrameRequest[] }
  | { type: 'flush'; seq: number }
  | { type: 'close' };

/**
 * Messages from the worker to the recorder. After a failure in the middle of a batch, the frames coded
 * before it still come ('encoded'), then the error, which names the frame that failed.
 */
export type FromWorker =
  | { type: 'ready'; seq: -1; name: string }
  | { type: 'encoded'; frames: FrameReply[] }
  | { type: 'flushed'; seq: number; units: AccessUnit[] }
  | { type: 'error'; seq: number; code: string; message: string };

function loadBackend(spec: string): EncoderBackend {
  // `openh264` and `ffmpeg:ENCODER[@DEVICE]` select a built-in backend; a path selects a module exporting
  // createBackend() (tests inject faults into a real encoder this way).
  const ffmpeg = parseFfmpegSpec(spec);
  if (ffmpeg !== null) return createFfmpegBackend(ffmpeg);
  const modulePath = spec === 'openh264' ? './encoders/openh264' : spec;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(modulePath) as BackendModule;
  return mod.createBackend();
}

/**
 * Codes a batch in order. A failure stops the batch: the frames coded before it are returned with it, so the
 * recorder keeps them (as it would have with one message per frame) and sees the error at the frame that failed.
 */
async function codeFrames(backend: EncoderBackend | null, frames: readonly FrameRequest[]):
Promise<{ frames: FrameReply[]; failure: { seq: number; err: unknown } | null }> {
  const done: FrameReply[] = [];
  for (const f of frames) {
    try {
      if (backend === null) throw new Error('frame before init');
      const start = performance.now();
      const unit = await backend.encode(f.input);
      done.push({ seq: f.seq, unit, seconds: (performance.now() - start) / 1000 });
    } catch (err) {
      return { frames: done, failure: { seq: f.seq, err } };
    }
  }
  return { frames: done, failure: null };
}

if (parentPort !== null) {
  const port = parentPort;
  let backend: EncoderBackend | null = null;
  let failed = false;
  const fail = (seq: number, err: unknown): void => {
    failed = true;
    // Our errors and the binding's OpenH264Error both carry a stable string code; keep it.
    const own = err instanceof DeskrecError ? err.code : (err as { code?: unknown } | null)?.code;
    const code = typeof own === 'string' ? own : 'ENCODE_FAILED';
    // The message without the code: the client's EncoderError carries the code, and describeError() joins them.
    const message = err instanceof DeskrecError ? err.message : describeError(err);
    const msg: FromWorker = { type: 'error', seq, code, message };
    port.postMessage(msg);
  };
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    chain = chain.then(async () => {
      if (msg.type === 'close') {
        backend?.close();
        backend = null;
        port.close();
        return;
      }
      if (failed) return;
      try {
        switch (msg.type) {
          case 'init': {
            backend = loadBackend(msg.backend);
            await backend.init(msg.config);
            const ready: FromWorker = { type: 'ready', seq: -1, name: backend.name };
            port.postMessage(ready);
            break;
          }
          case 'frames': {
            const coded = await codeFrames(backend, msg.frames);
            if (coded.frames.length > 0) {
              const out: FromWorker = { type: 'encoded', frames: coded.frames };
              port.postMessage(out, coded.frames.flatMap((f) => (f.unit === null ? [] : [f.unit.data.buffer as ArrayBuffer])));
            }
            if (coded.failure !== null) fail(coded.failure.seq, coded.failure.err);
            break;
          }
          case 'flush': {
            const units = backend === null ? [] : await backend.flush();
            const out: FromWorker = { type: 'flushed', seq: msg.seq, units };
            port.postMessage(out);
            break;
          }
        }
      } catch (err) {
        fail(msg.type === 'init' ? -1 : msg.type === 'flush' ? msg.seq : (msg.frames[0]?.seq ?? -1), err);
      }
    });
  });
}
