/** `deskrec inspect FILE`: what a capture holds, by stream and by protocol message, as a table or JSON. */
import type { Frame } from '../capture/surface';
import { captureRecords, type Capture } from '../capture/deskcap/reader';
import { KIND, type CaptureEnd } from '../capture/deskcap/format';
import { ReplaySource } from './replay';

/** The inspection result (`--json` prints it as is). */
export interface Inspection {
  protocol: string;
  target: string;
  start: string;
  deskrecVersion: string;
  duration_ms: number;
  /** The END record: how the recording ended, its frames, and (newer captures) what became of the remote clipboard. */
  end: CaptureEnd | null;
  truncated: string | null;
  streams: { stream: number; bytesIn: number; bytesOut: number; chunksIn: number; chunksOut: number }[];
  frames: number;
  sizes: { t_ms: number; width: number; height: number }[];
  messages: Record<string, number>;
  /** VNC: rectangles per encoding (empty for SPICE). */
  rectangles: Record<string, number>;
  /** SPICE: images per type, MJPEG stream frames as `mjpeg` (empty for VNC). */
  images: Record<string, number>;
  /** Set when decoding the capture failed part-way (what was counted up to there is still reported). */
  decodeError: string | null;
}

/**
 * Decodes the capture (without recording anything) and counts what it holds. A capture file is read twice
 * as a stream (the counts, then the replay), never whole.
 */
export async function inspectCapture(capture: Capture): Promise<Inspection> {
  const streams = new Map<number, Inspection['streams'][number]>();
  let last = 0;
  for (const r of captureRecords(capture)) {
    last = Math.max(last, r.t_us / 1000);
    if (r.kind !== KIND.IN && r.kind !== KIND.OUT) continue;
    const s = streams.get(r.stream) ?? { stream: r.stream, bytesIn: 0, bytesOut: 0, chunksIn: 0, chunksOut: 0 };
    if (r.kind === KIND.IN) { s.bytesIn += r.data.length; s.chunksIn++; } else { s.bytesOut += r.data.length; s.chunksOut++; }
    streams.set(r.stream, s);
  }
  const sizes: Inspection['sizes'] = [];
  let frames = 0;
  let decodeError: string | null = null;
  const source = new ReplaySource(capture, 'max');
  try {
    await source.run({
      onFrame: (f: Frame) => {
        frames++;
        const prev = sizes[sizes.length - 1];
        if (prev === undefined || prev.width !== f.width || prev.height !== f.height) sizes.push({ t_ms: f.t_ms, width: f.width, height: f.height });
      },
      whenReady: () => Promise.resolve(),
    }, { signal: new AbortController().signal, durationMs: null });
  } catch (err) {
    decodeError = err instanceof Error ? err.message : String(err);
  }
  const d = source.describe();
  return {
    protocol: capture.header.protocol,
    target: capture.header.target,
    start: capture.header.start,
    deskrecVersion: capture.header.deskrecVersion,
    duration_ms: capture.end?.t_ms ?? last,
    end: capture.end,
    truncated: capture.truncated,
    streams: [...streams.values()].sort((a, b) => a.stream - b.stream),
    frames,
    sizes,
    messages: flatten(d.messages),
    rectangles: flatten(d.rectangles),
    images: flatten(d.images),
    decodeError,
  };
}

/**
 * A counter table from `describe()`: VNC's are flat; SPICE counts messages per channel, which become
 * `channel.message` keys. Anything else (absent, not numbers) counts as empty.
 */
function flatten(v: unknown, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'number') out[prefix + k] = x;
    else Object.assign(out, flatten(x, `${prefix}${k}.`));
  }
  return out;
}

/** What the END record says of the remote clipboard, in words. */
function clipboardLine(c: NonNullable<CaptureEnd['clipboard']>): string {
  if (c.transfers === 0) return 'none received';
  return `${c.transfers} transfer${c.transfers === 1 ? '' : 's'}, ${c.bytes} bytes, ${c.kept ? 'kept (--raw-clipboard)' : 'recorded as zeros'}`;
}

/** The inspection as an aligned text table. */
export function formatInspection(i: Inspection): string {
  const rows: [string, string][] = [
    ['protocol', i.protocol], ['target', i.target], ['start', i.start], ['recorded by', `deskrec ${i.deskrecVersion}`],
    ['duration', `${(i.duration_ms / 1000).toFixed(3)} s`],
    ['ended', i.end === null ? 'no END record (the recorder was killed)' : `${i.end.reason} after ${i.end.frames} frames`],
    ...(i.end?.clipboard === undefined ? [] : [['clipboard', clipboardLine(i.end.clipboard)] as [string, string]]),
    ['file', i.truncated ?? 'complete'],
    ['frames', String(i.frames)],
  ];
  const out: string[] = rows.map(([k, v]) => `${k.padEnd(14)}${v}`);
  out.push('', 'stream  bytes in  bytes out  chunks in  chunks out');
  for (const s of i.streams) {
    out.push(`${String(s.stream).padStart(6)}  ${String(s.bytesIn).padStart(8)}  ${String(s.bytesOut).padStart(9)}  ${String(s.chunksIn).padStart(9)}  ${String(s.chunksOut).padStart(10)}`);
  }
  out.push('', 'sizes');
  for (const s of i.sizes) out.push(`  ${(s.t_ms / 1000).toFixed(3).padStart(9)} s  ${s.width}x${s.height}`);
  const table = (title: string, m: Record<string, number>): void => {
    out.push('', title);
    for (const [k, v] of Object.entries(m).sort((a, b) => b[1] - a[1])) out.push(`  ${k.padEnd(32)}${String(v).padStart(10)}`);
  };
  table('messages', i.messages);
  if (i.protocol === 'spice') table('images by type', i.images);
  else table('rectangles by encoding', i.rectangles);
  if (i.decodeError !== null) out.push('', `decoding stopped: ${i.decodeError}`);
  return `${out.join('\n')}\n`;
}
