/**
 * Live input over SPICE: QEMU boots the tiny guest in `shell` mode (an interactive busybox shell on tty1,
 * the console the SPICE display shows, reading QEMU's PS/2 keyboard), deskrec's SpiceSource records it
 * in-process, and a shell command is typed through the source's input API (SPICE inputs channel, keysyms
 * turned into PC scancodes). The command writes a marker to the guest's serial port, which QEMU writes to
 * a file: the test sees the keys arrive without reading pixels. Then, visibly: the recorded frame after
 * typing differs from the one before (the shell echoed the line), and both equal QMP `screendump`.
 *
 * Before deskrec types anything, the same kind of command is typed through QMP `send-key`, so a failure
 * says which side is broken: the guest (no QMP marker) or deskrec's input path (no SPICE marker).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from '../../src/capture/surface';
import type { RemoteInput, SourceEnd } from '../../src/sources/source';
import { parseSpiceUrl, SpiceSource } from '../../src/sources/spice';
import { countDifferentPixels, type RgbaImage } from '../helpers/servers/image';
import { FatalError, pollUntil } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { GUEST_SHELL_READY } from '../helpers/servers/guest';
import { startQemuSpice, type SpiceServer } from '../helpers/servers/spice';

useServerCleanup();

/** X11 keysym of Return; printable ASCII keysyms are the characters' codes. */
const XK_RETURN = 0xff0d;
const QMP_MARKER = 'deskrec-qmp-typed-OK';
const HELD_MARKER = 'deskrec-spice-Shift-OK';
const SPICE_MARKER = 'deskrec-spice-typed-OK';

const notes: string[] = [];
afterAll(() => {
  process.stdout.write(`SPICE input:\n${notes.join('\n')}\n`);
});

/**
 * The consumer: keeps a packed copy of the newest frame (pixels are only valid during onFrame) and counts
 * the frames whose pixels differ from the one before, so a test can wait for "the screen changed".
 */
class FrameWatch {
  latest: RgbaImage | null = null;
  frames = 0;
  changes = 0;
  /** Why the source's run ended with an error, once it has. */
  failure: Error | undefined = undefined;
  private lastHash = '';

  onFrame(f: Frame): void {
    const rowBytes = f.width * 4;
    const rgba = new Uint8Array(rowBytes * f.height);
    for (let y = 0; y < f.height; y++) rgba.set(f.rgba.subarray(y * f.stride, y * f.stride + rowBytes), y * rowBytes);
    const hash = createHash('sha1').update(rgba).update(`${f.width}x${f.height}`).digest('hex');
    if (hash !== this.lastHash) this.changes++;
    this.lastHash = hash;
    this.latest = { width: f.width, height: f.height, rgba };
    this.frames++;
  }

  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  /** Throws (ending any poll at once) when the source's run has failed. */
  check(): void {
    if (this.failure !== undefined) {
      throw new FatalError(`the SPICE source failed: ${this.failure.message}`);
    }
  }

  /** Waits until a frame with new pixels arrived after `changes` was `seen`. */
  async waitForChange(seen: number, what: string, timeoutMs: number): Promise<void> {
    await pollUntil(what, timeoutMs, () => {
      this.check();
      return Promise.resolve(this.changes > seen ? true : undefined);
    }, 10);
  }
}

/** Waits until deskrec's newest frame equals QMP screendump pixel for pixel (the screen is quiet then). */
function frameMatchesScreen(server: SpiceServer, watch: FrameWatch, what: string): Promise<RgbaImage> {
  return pollUntil(what, 60000, async () => {
    watch.check();
    const frame = watch.latest;
    if (frame === null) return undefined;
    const shot = await server.screenshotRgba();
    if (shot.width !== frame.width || shot.height !== frame.height) return undefined;
    return countDifferentPixels(frame, shot) === 0 ? frame : undefined;
  }, 200);
}

/** X11 keysym of Shift_L. */
const XK_SHIFT_L = 0xffe1;
/** Characters that need Shift on a US keyboard. */
const SHIFTED = /^[A-Z~!@#$%^&*()_+{}|:"<>?]$/;

/**
 * How the caller sends characters that need Shift: `keysym` — the bare keysym (`>` is 0x3e) and the
 * input path presses Shift itself; `held` — Shift_L down, the keysym, Shift_L up, as a viewer forwarding
 * a real keyboard does.
 */
type ShiftStyle = 'keysym' | 'held';

/**
 * Types `text` through the input API in one burst, each character as press + release of its keysym.
 * QEMU hands SPICE key events straight to the emulated PS/2 keyboard, whose queue holds 16 bytes and drops
 * what does not fit (30 keys sent at once arrived as 4); the SPICE input path spaces key messages
 * (KEY_GAP_MS in src/protocol/spice/inputs-channel.ts), so the whole command must arrive — the serial
 * marker proves every key did.
 */
function typeThroughSpice(input: RemoteInput, text: string, style: ShiftStyle): void {
  for (const ch of text) {
    const keysym = ch.charCodeAt(0);
    const hold = style === 'held' && SHIFTED.test(ch);
    if (hold) input.key({ keysym: XK_SHIFT_L, down: true });
    input.key({ keysym, down: true });
    input.key({ keysym, down: false });
    if (hold) input.key({ keysym: XK_SHIFT_L, down: false });
  }
}

/** Writes a picture as PPM (P6) for a failure report: what was on the screen when the marker did not come. */
function savePpm(img: RgbaImage, name: string): string {
  const rgb = Buffer.alloc(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) {
    rgb[i * 3] = img.rgba[i * 4] ?? 0;
    rgb[i * 3 + 1] = img.rgba[i * 4 + 1] ?? 0;
    rgb[i * 3 + 2] = img.rgba[i * 4 + 2] ?? 0;
  }
  const file = join(tmpdir(), name);
  writeFileSync(file, Buffer.concat([Buffer.from(`P6\n${img.width} ${img.height}\n255\n`), rgb]));
  return file;
}

describe.each(['std', 'qxl'] as const)('-vga %s, shell guest', (vga) => {
  test('keys typed through SpiceSource.input reach the guest shell and show on the recorded screen', async () => {
    const t0 = Date.now();
    const server = await startQemuSpice({ vga, guestMode: 'shell' });
    const ac = new AbortController();
    let running: Promise<SourceEnd> | undefined;
    try {
      await server.waitForShell(90000);
      const bootMs = Date.now() - t0;

      // The guest side alone: QMP send-key into the same shell.
      await server.typeViaQmp(`echo ${QMP_MARKER} >/dev/ttyS0\n`);
      await server.waitForSerial(QMP_MARKER, 30000);
      const qmpMs = Date.now() - t0 - bootMs;

      const source = new SpiceSource(parseSpiceUrl(new URL(`spice://127.0.0.1:${server.port}`)), {
        password: null, preferCompression: null, tlsCa: undefined, tlsInsecure: false, taps: [],
      });
      const watch = new FrameWatch();
      running = source.run(watch, { signal: ac.signal, durationMs: null });
      running.catch((e: unknown) => { watch.failure = e instanceof Error ? e : new Error(JSON.stringify(e)); });
      const input = source.input;
      // The inputs channel links after the main channel: keys are accepted once it is up.
      await pollUntil('the SPICE inputs channel', 30000, () => {
        watch.check();
        return Promise.resolve(input.capabilities().keys ? true : undefined);
      }, 50);
      expect(input.capabilities().scancodes).toBe(true);
      const before = await frameMatchesScreen(server, watch, 'the first recorded frame to equal screendump');

      // Types `echo MARKER >/dev/ttyS0` and Return; resolves once MARKER is on the serial port. On a
      // timeout the last recorded frame is saved: it shows what the shell got instead.
      const runCommand = async (marker: string, style: ShiftStyle): Promise<number> => {
        const from = server.serialText().length;
        const t = Date.now();
        const command = `echo ${marker} >/dev/ttyS0`;
        typeThroughSpice(input, command, style);
        input.key({ keysym: XK_RETURN, down: true });
        input.key({ keysym: XK_RETURN, down: false });
        try {
          await server.waitForSerial(marker, 30000, from);
        } catch (e) {
          const shown = watch.latest === null ? 'no frame' : savePpm(watch.latest, `deskrec-spice-input-${vga}-${process.pid}.ppm`);
          throw new Error(`Shift ${style === 'held' ? 'held by the caller' : 'from the bare keysyms'}: ${e instanceof Error ? e.message : String(e)}; ` +
            `serial: ${JSON.stringify(server.serialText())}; last recorded frame: ${shown}`);
        }
        return Date.now() - t;
      };
      // First with Shift held as a real keyboard sends it, then with bare keysyms (the input path adds
      // Shift for the capitals and `>`; several in a row, so its Shift bookkeeping must reset each time).
      const heldMs = await runCommand(HELD_MARKER, 'held');
      const keysymMs = await runCommand(SPICE_MARKER, 'keysym');

      // Visible: the echoed command lines and the new prompts are on the recorded screen, as QEMU has it.
      const after = await frameMatchesScreen(server, watch, 'the recorded frame after typing to equal screendump');
      const changed = countDifferentPixels(before, after);
      // At least a few pixels for each of the ~2 x 40 echoed characters (8x16 glyphs).
      expect(changed).toBeGreaterThan(2 * 40 * 8);
      expect(server.serialText()).toBe(`${GUEST_SHELL_READY}\n${QMP_MARKER}\n${HELD_MARKER}\n${SPICE_MARKER}\n`);

      ac.abort();
      const end = await running;
      expect(end.reason).toBe('signal');
      notes.push(`  ${vga}: shell ready ${bootMs} ms after start, QMP typing ${qmpMs} ms; through SPICE, a command of 40 keys to its marker: ` +
        `Shift held ${heldMs} ms, bare keysyms ${keysymMs} ms; ` +
        `${watch.frames} frames (${watch.changes} distinct), ${changed} pixels changed, total ${Date.now() - t0} ms`);
    } finally {
      ac.abort();
      await running?.catch(() => undefined);
      await server.stop();
    }
  }, 240000);
});
