/**
 * The SPICE clipboard through a real guest agent (src/protocol/spice/agent.ts against spice-vdagent): the
 * agent test guest (scripts/guest/build-agent.sh; `startQemuSpice({ guestMode: 'agent' })`) is QEMU with a
 * virtio-serial port wired to spice-server's agent channel and a guest running Xvfb, Debian's
 * spice-vdagentd + spice-vdagent and xclip, with a shell on its serial port.
 * - A guest program copies (xclip): deskrec's SpiceSource hands the text to its clipboard listener.
 * - deskrec sets the clipboard: a guest program pastes it (xclip -o), through the agent asking us for it.
 * - A `--raw` capture of that session holds neither text (the guest's is named to the capture writer as
 *   clipboard bytes and recorded as zeros; ours went out marked secret), and replays to the same frames.
 * - The plain guest (no agent device): the clipboard says there is no agent.
 * Prints the boot time to agent-ready under TCG.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KIND, type CaptureEnd } from '../../src/capture/deskcap/format';
import { readCapture } from '../../src/capture/deskcap/reader';
import { CaptureWriter } from '../../src/capture/deskcap/writer';
import type { Frame } from '../../src/capture/surface';
import { ReplaySource } from '../../src/sources/replay';
import type { FrameConsumer, SourceEnd } from '../../src/sources/source';
import { parseSpiceUrl, SpiceSource } from '../../src/sources/spice';
import { useAgentGuest } from '../helpers/servers/guest';
import { FatalError, pollUntil } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startQemuSpice } from '../helpers/servers/spice';

useServerCleanup();

const notes = useAgentGuest('SPICE agent guest');

const HEADER = { protocol: 'spice', target: 'spice://test', start: '2026-01-01T00:00:00.000Z', deskrecVersion: '0', credentials: { password: false, username: false } };

function frameHash(f: Frame): string {
  const h = createHash('sha256');
  for (let y = 0; y < f.height; y++) h.update(f.rgba.subarray(y * f.stride, y * f.stride + f.width * 4));
  return `${f.t_ms} ${f.width}x${f.height} ${h.digest('hex')}`;
}

/** `text`'s UTF-8 bytes as a latin1 string (what the harness's serial line carries byte for byte). */
function latin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

function source(port: number, taps: CaptureWriter[] = []): SpiceSource {
  return new SpiceSource(parseSpiceUrl(new URL(`spice://127.0.0.1:${port}`)), {
    password: null, preferCompression: null, tlsCa: undefined, tlsInsecure: false, taps,
  });
}

describe('SPICE clipboard through spice-vdagent', () => {
  test('a guest copy reaches deskrec, deskrec\'s text is pasted in the guest, and the raw capture holds neither', async () => {
    const t0 = Date.now();
    const server = await startQemuSpice({ vga: 'qxl', guestMode: 'agent' });
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-agent-'));
    const ac = new AbortController();
    let running: Promise<SourceEnd> | undefined;
    try {
      try {
        await server.waitForAgent(180000);
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}; serial: ${JSON.stringify(server.serialText())}`);
      }
      const readyMs = Date.now() - t0;

      const file = path.join(dir, 'session.deskcap');
      const writer = new CaptureWriter(file, HEADER);
      const src = source(server.port, [writer]);
      const copied: string[] = [];
      src.onClipboard((text) => { copied.push(text); });
      const live: string[] = [];
      let failure: Error | undefined;
      const consumer: FrameConsumer = { onFrame: (f) => { live.push(frameHash(f)); }, whenReady: () => Promise.resolve() };
      running = src.run(consumer, { signal: ac.signal, durationMs: null });
      running.catch((e: unknown) => { failure = e instanceof Error ? e : new Error(JSON.stringify(e)); });
      const alive = (): void => { if (failure !== undefined) throw new FatalError(`SpiceSource failed: ${failure.message}`); };
      let reason: string | null = 'not started';
      await pollUntil('the guest agent to offer its clipboard', 60000, () => {
        alive();
        reason = src.input.capabilities().clipboard;
        return Promise.resolve(reason === null ? true : undefined);
      }, 50).catch((e: unknown) => { throw new Error(`${e instanceof Error ? e.message : String(e)}; the clipboard said: ${String(reason)}`); });

      // Guest → deskrec: a guest program copies; the agent grabs, deskrec asks, the text arrives.
      const fromGuest = `guest-secret-${process.pid}-${Date.now()} ünïcødé`;
      // The serial line carries bytes (latin1 strings in the harness): the UTF-8 bytes go as they are.
      expect(await server.serialRun(`echo '${latin1(fromGuest)}' | DISPLAY=:0 xclip -selection clipboard -t UTF8_STRING`)).toEqual({ output: '', status: 0 });
      await pollUntil('the guest\'s text at deskrec', 30000, () => { alive(); return Promise.resolve(copied.includes(`${fromGuest}\n`) ? true : undefined); }, 50)
        .catch((e: unknown) => { throw new Error(`${e instanceof Error ? e.message : String(e)}; got ${JSON.stringify(copied)}`); });

      // deskrec → guest: a grab now, the text when a guest program pastes (the agent asks deskrec for it).
      const fromUs = `deskrec-secret-${process.pid}-${Date.now()}\nsecond line, 日本語`;
      src.input.clipboard(fromUs);
      let pasted = '';
      await pollUntil('deskrec\'s text pasted in the guest', 30000, async () => {
        alive();
        pasted = Buffer.from((await server.serialRun('DISPLAY=:0 timeout 10 xclip -o -selection clipboard -t UTF8_STRING')).output, 'latin1').toString('utf8');
        return pasted === fromUs ? true : undefined;
      }, 500).catch((e: unknown) => { throw new Error(`${e instanceof Error ? e.message : String(e)}; the guest pasted ${JSON.stringify(pasted)}`); });

      ac.abort();
      const end = await running;
      expect(end.reason).toBe('signal');
      const capEnd: CaptureEnd = { reason: 'signal', t_ms: end.t_ms, frames: src.framesDelivered };
      expect(writer.close(capEnd)).toBeNull();
      expect(src.describe()).toMatchObject({ agent: { state: 'ready', clipboard: { fromGuest: 1, toGuest: 1 } } });

      // The capture: neither text in any record, in either direction (the file's blocks are compressed, so
      // the records as the reader gives them are what to search); the guest's was marked clipboard.
      const c = readCapture(file);
      const all = Buffer.concat(c.records.filter((r) => r.kind === KIND.IN || r.kind === KIND.OUT).map((r) => r.data));
      for (const secret of [fromGuest, fromUs.split('\n')[0] ?? '', 'second line, 日本語']) {
        expect({ secret, inRecords: all.includes(Buffer.from(secret, 'utf8')) }).toEqual({ secret, inRecords: false });
      }
      // One transfer: the guest's text and its 4-byte type, zeros in the file.
      expect(c.end?.clipboard).toEqual({ transfers: 1, bytes: 4 + Buffer.byteLength(fromGuest) + 1, kept: false });

      // It replays to the same frames.
      const replayed: string[] = [];
      await new ReplaySource(c, 'max').run({ onFrame: (f) => { replayed.push(frameHash(f)); }, whenReady: () => Promise.resolve() },
        { signal: new AbortController().signal, durationMs: null });
      expect(replayed.length).toBeGreaterThan(0);
      expect(replayed).toEqual(live.slice(0, replayed.length));
      expect(replayed.length).toBe(capEnd.frames);

      notes.push(`  agent-ready ${readyMs} ms after start (TCG, qxl, 256 MiB); initrd ${server.guest.info.initrd_bytes ?? '?'} bytes; ` +
        `${live.length} frames; capture clipboard ${JSON.stringify(c.end?.clipboard)}; ${server.guest.info.versions ?? ''}`);
    } finally {
      ac.abort();
      await running?.catch(() => undefined);
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300000);

  test('the plain guest (no agent device): the clipboard says there is no agent', async () => {
    const server = await startQemuSpice({ vga: 'std' });
    const ac = new AbortController();
    let running: Promise<SourceEnd> | undefined;
    try {
      const src = source(server.port);
      running = src.run({ onFrame: () => undefined, whenReady: () => Promise.resolve() }, { signal: ac.signal, durationMs: null });
      const reason = await pollUntil('the SPICE inputs channel', 30000, () => {
        const c = src.input.capabilities();
        return Promise.resolve(c.keys ? c.clipboard : undefined);
      }, 50);
      expect(reason).toBe('no SPICE guest agent');
    } finally {
      ac.abort();
      await running?.catch(() => undefined);
      await server.stop();
    }
  }, 120000);
});
