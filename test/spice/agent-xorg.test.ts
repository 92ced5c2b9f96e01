/**
 * The agent test guest with Xorg on the QXL display (`startQemuSpice({ guestMode: 'agent', agentX: 'xorg' })`;
 * scripts/guest/build-agent.sh, `deskrec.agentx=xorg`): X is what the SPICE display shows, so an XRandR mode
 * change in the guest resizes the display, which is what a viewer's "fit to window" relies on.
 * - Once the guest reports ready, QMP `screendump` has the size `xrandr` reports for the X screen and shows
 *   the root window's colour (xsetroot in /init), not the text console.
 * - `xrandr --mode 800x600`, then a mode made with `--newmode`/`--addmode` (a size no list has): each time
 *   `screendump` follows, and deskrec's SpiceSource delivers frames of the new size showing the root colour.
 * - deskrec's own request (`input.resize`: the agent's MONITORS_CONFIG) resizes the guest with nothing run in
 *   it: screendump and deskrec's frames take the asked size.
 * Prints the boot time to ready under TCG.
 */
import type { Frame } from '../../src/capture/surface';
import type { FrameConsumer, SourceEnd } from '../../src/sources/source';
import { parseSpiceUrl, SpiceSource } from '../../src/sources/spice';
import { useAgentGuest } from '../helpers/servers/guest';
import type { RgbaImage } from '../helpers/servers/image';
import { FatalError, pollUntil } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startQemuSpice, type SpiceServer } from '../helpers/servers/spice';

useServerCleanup();

const notes = useAgentGuest('SPICE agent guest with Xorg');

/** The root window's colour /init sets (xsetroot -solid '#336699'). */
const ROOT = { r: 0x33, g: 0x66, b: 0x99 };

interface XScreen {
  width: number;
  height: number;
  /** The connected output (e.g. Virtual-1). */
  output: string;
  /** `xrandr`'s output as it was. */
  text: string;
}

/** `xrandr` in the guest: the screen's current size and the connected output. */
async function xrandr(server: SpiceServer): Promise<XScreen> {
  // 90 s, not serialRun's 30: right after a switch to a new mode, the TCG guest's X server took longer than
  // 30 s to answer in one clean-clone CI run on the 2-core machine (2026-12-06); alone it answers in well
  // under a second.
  const r = await server.serialRun('DISPLAY=:0 xrandr', 90000);
  if (r.status !== 0) throw new Error(`xrandr failed (${r.status}): ${r.output}`);
  const size = /current (\d+) x (\d+)/.exec(r.output);
  const output = /^(\S+) connected/m.exec(r.output);
  if (size === null || output === null) throw new Error(`unexpected xrandr output: ${r.output}`);
  return { width: Number(size[1]), height: Number(size[2]), output: output[1] ?? '', text: r.output };
}

/** The share of `img`'s pixels that are the root colour. */
function rootShare(rgba: Uint8Array, width: number, height: number, stride: number): number {
  let n = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * stride + x * 4;
      if (rgba[i] === ROOT.r && rgba[i + 1] === ROOT.g && rgba[i + 2] === ROOT.b) n++;
    }
  }
  return n / (width * height);
}

const imageShare = (img: RgbaImage): number => rootShare(img.rgba, img.width, img.height, img.width * 4);

describe('SPICE agent guest with Xorg on QXL', () => {
  test('an XRandR mode change in the guest resizes the SPICE display, in screendump and in deskrec\'s frames', async () => {
    const t0 = Date.now();
    const server = await startQemuSpice({ vga: 'qxl', guestMode: 'agent', agentX: 'xorg' });
    const ac = new AbortController();
    let running: Promise<SourceEnd> | undefined;
    try {
      try {
        await server.waitForAgent(180000);
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}; serial: ${JSON.stringify(server.serialText())}`);
      }
      const readyMs = Date.now() - t0;

      // X's screen is the SPICE display: same size, and the root colour fills it (the console is gone).
      const first = await xrandr(server);
      const shot = await server.screenshotRgba();
      expect({ width: shot.width, height: shot.height }).toEqual({ width: first.width, height: first.height });
      expect(imageShare(shot)).toBeGreaterThan(0.95);

      // deskrec's view: the newest frame's size and how much of it is the root colour (checked while the
      // frame is valid, in onFrame).
      const src = new SpiceSource(parseSpiceUrl(new URL(`spice://127.0.0.1:${server.port}`)), {
        password: null, preferCompression: null, tlsCa: undefined, tlsInsecure: false, taps: [],
      });
      const seen: { width: number; height: number; root: number }[] = [];
      let failure: Error | undefined;
      const consumer: FrameConsumer = {
        onFrame: (f: Frame) => { seen.push({ width: f.width, height: f.height, root: rootShare(f.rgba, f.width, f.height, f.stride) }); },
        whenReady: () => Promise.resolve(),
      };
      running = src.run(consumer, { signal: ac.signal, durationMs: null });
      running.catch((e: unknown) => { failure = e instanceof Error ? e : new Error(JSON.stringify(e)); });
      const alive = (): void => { if (failure !== undefined) throw new FatalError(`SpiceSource failed: ${failure.message}`); };
      /** Waits for a frame of `w`x`h` that shows the root colour (the picture after the resize, not a blank surface). */
      const frameOf = (w: number, h: number): Promise<boolean> =>
        pollUntil(`a ${w}x${h} frame at deskrec`, 60000, () => {
          alive();
          return Promise.resolve(seen.some((s) => s.width === w && s.height === h && s.root > 0.95) ? true : undefined);
        }, 50).catch((e: unknown) => {
          throw new Error(`${e instanceof Error ? e.message : String(e)}; frames seen: ${JSON.stringify(seen.slice(-5))}`);
        });
      await frameOf(first.width, first.height);

      const sizes = [`${first.width}x${first.height}`];
      /** Runs `command` (xrandr) in the guest and waits until screendump and deskrec's frames are `w`x`h`. */
      const resize = async (command: string, w: number, h: number): Promise<void> => {
        const r = await server.serialRun(command);
        expect({ command, ...r }).toEqual({ command, output: '', status: 0 });
        const now = await xrandr(server);
        expect({ width: now.width, height: now.height }).toEqual({ width: w, height: h });
        const img = await pollUntil(`screendump at ${w}x${h}`, 30000, async () => {
          const s = await server.screenshotRgba();
          return s.width === w && s.height === h ? s : undefined;
        }, 100);
        // The whole new screen is X's root window, not left-overs of the old picture.
        await pollUntil(`the root colour over the ${w}x${h} screendump`, 30000, async () =>
          (imageShare(await server.screenshotRgba()) > 0.95 ? true : undefined), 100).catch((e: unknown) => { throw new Error(`${e instanceof Error ? e.message : String(e)} (share was ${imageShare(img)})`); });
        await frameOf(w, h);
        sizes.push(`${w}x${h}`);
      };

      // A mode the qxl connector lists.
      expect(first.text).toMatch(/^\s+800x600\s/m);
      await resize(`DISPLAY=:0 xrandr --output ${first.output} --mode 800x600`, 800, 600);
      // A size no list has (as a client's "fit to window" would ask for): a new mode, added to the output.
      // 1000x700 at 60 Hz: 1120 x 720 total, 48.38 MHz.
      const make = 'DISPLAY=:0 xrandr --newmode deskrec-1000x700 48.38 1000 1040 1080 1120 700 703 713 720 -hsync +vsync' +
        ` && DISPLAY=:0 xrandr --addmode ${first.output} deskrec-1000x700`;
      await resize(`${make} && DISPLAY=:0 xrandr --output ${first.output} --mode deskrec-1000x700`, 1000, 700);

      // deskrec asks (the agent's MONITORS_CONFIG, as a viewer's "fit to window" does): spice-server hands it
      // to the QXL device, the guest's qxl driver makes it the preferred mode and signals a hot-plug, and
      // the guest (its hot-plug handler, as a desktop would) switches to it. Nothing is run in the guest.
      await pollUntil('the agent to take a display size', 30000, () => { alive(); return Promise.resolve(src.input.capabilities().resize === true ? true : undefined); }, 50);
      src.input.resize?.(1104, 656);
      const img = await pollUntil('screendump at 1104x656 after deskrec\'s MONITORS_CONFIG', 60000, async () => {
        const s = await server.screenshotRgba();
        return s.width === 1104 && s.height === 656 ? s : undefined;
      }, 100).catch(async (e: unknown) => { throw new Error(`${e instanceof Error ? e.message : String(e)}; xrandr: ${(await xrandr(server)).text}`); });
      expect(img.width).toBe(1104);
      await frameOf(1104, 656);
      sizes.push('1104x656 (deskrec)');
      expect(src.describe()).toMatchObject({ agent: { resizes: 1 } });

      notes.push(`  ready ${readyMs} ms after start (TCG, qxl, 256 MiB, Xorg modesetting); initrd ${server.guest.info.initrd_bytes ?? '?'} bytes; ` +
        `output ${first.output}; sizes ${sizes.join(' -> ')}; ${seen.length} frames; ${server.guest.info.versions ?? ''}`);
    } finally {
      ac.abort();
      await running?.catch(() => undefined);
      await server.stop();
    }
  }, 300000);
});
