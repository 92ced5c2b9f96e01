/**
 * Tests of the real-server harness itself (test/helpers/servers): Xvnc and QEMU start on loopback, offer
 * exactly the security configured, draw, hold still when paused, and their own screenshots equal what an
 * independent Raw-encoding RFB read of the same framebuffer gives.
 */
import { existsSync } from 'node:fs';
import { ByteWriter } from '../../src/wire/writer';
import { countDifferentPixels, distinctColours, parsePpm, parseXwd, pixelAt, type RgbaImage } from '../helpers/servers/image';
import { freeTcpPort, reserveDisplay } from '../helpers/servers/ports';
import { startQemuVnc, VGA_BLUE } from '../helpers/servers/qemu';
import { grabRawFrame, probeRfb, SecurityType, VeNCryptSubtype } from '../helpers/servers/rfb';
import { liveServers, stopAllServers, useServerCleanup } from '../helpers/servers/registry';
import { sleep } from '../helpers/servers/proc';
import { startXvnc } from '../helpers/servers/xvnc';
import { startScrollingXterm, startTypingXterm, startXclock, typeText } from '../helpers/servers/x11-clients';
import { testTimeoutFor, waitForScreenChange, waitForStillScreen } from '../helpers/wait';
import { timedTests } from '../helpers/timed';

useServerCleanup();

const { timed } = timedTests('harness timings', testTimeoutFor(2));

function expectPlausible(img: RgbaImage, width: number, height: number, minColours = 3): void {
  expect(img.width).toBe(width);
  expect(img.height).toBe(height);
  expect(img.rgba.length).toBe(width * height * 4);
  expect(distinctColours(img, 64)).toBeGreaterThanOrEqual(minColours);
}

describe('decoders and ports', () => {
  test('XWD: a 2x1 big-endian 32-bit TrueColor dump decodes by its masks', () => {
    // The 100-byte header (25 big-endian words), then the two pixels.
    const words = [100, 7, 2, 24, 2, 1, 0, 1, 32, 1, 32, 32, 8, 4, 0xff0000, 0xff00, 0xff, 8, 256, 0, 2, 1, 0, 0, 0, 0x00123456, 0x00abcdef];
    const h = new ByteWriter(4 * words.length);
    for (const w of words) h.u32(w);
    const img = parseXwd(Buffer.from(h.finish()));
    expect([img.width, img.height]).toEqual([2, 1]);
    expect([...img.rgba]).toEqual([0x12, 0x34, 0x56, 255, 0xab, 0xcd, 0xef, 255]);
  });

  test('PPM: P6 with a comment', () => {
    const img = parsePpm(Buffer.concat([Buffer.from('P6\n# qemu\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]));
    expect([...img.rgba]).toEqual([1, 2, 3, 255, 4, 5, 6, 255]);
  });

  test('ports and display reservations are never handed out twice', async () => {
    const ports = await Promise.all([freeTcpPort(), freeTcpPort(), freeTcpPort()]);
    expect(new Set(ports).size).toBe(3);
    const a = reserveDisplay();
    const b = reserveDisplay();
    expect(b.display).not.toBe(a.display);
    expect(existsSync(`/tmp/.deskrec-display-${a.display}.lock`)).toBe(true);
    a.release();
    b.release();
    expect(existsSync(`/tmp/.deskrec-display-${a.display}.lock`)).toBe(false);
  });
});

describe('Xvnc', () => {
  timed('None: clients draw, pausing holds the screen still, banner and security list match', async () => {
    const srv = await startXvnc({ width: 800, height: 600, security: 'None' });
    expect(srv.host).toBe('127.0.0.1');
    await startScrollingXterm(srv);
    await startXclock(srv);
    const moving1 = await srv.screenshotRgba();
    const moving2 = await waitForScreenChange(() => srv.screenshotRgba(), moving1);
    expect(countDifferentPixels(moving1, moving2)).toBeGreaterThan(0);

    srv.pauseClients();
    // Requests the clients sent before the stop are drawn: the screen settles.
    const a = await waitForStillScreen(() => srv.screenshotRgba());
    await sleep(1000); // the claim itself: a paused screen stays still for a while (here 1 s)
    const b = await srv.screenshotRgba();
    expectPlausible(a, 800, 600);
    expect(countDifferentPixels(a, b)).toBe(0);
    expect(pixelAt(a, 799, 599)).toBe(0x204060); // root background from xsetroot

    const p = await probeRfb(srv.host, srv.port);
    expect(p.banner).toBe('RFB 003.008');
    expect(p.securityTypes).toEqual([SecurityType.None]);

    // The premise of the pixel tests: an independent Raw read equals the server's screenshot.
    const raw = await grabRawFrame(srv.host, srv.port, { cursorPseudo: true });
    expect(raw.image.width).toBe(800);
    expect(countDifferentPixels(raw.image, a)).toBe(0);
    srv.resumeClients();
    await srv.stop();
  });

  timed('VncAuth: only VncAuth is offered; typing shows up', async () => {
    const srv = await startXvnc({ width: 640, height: 480, security: 'VncAuth', password: 'secret12' });
    expect(srv.password).toBe('secret12');
    const p = await probeRfb(srv.host, srv.port);
    expect(p.banner).toBe('RFB 003.008');
    expect(p.securityTypes).toEqual([SecurityType.VncAuth]);
    const term = await startTypingXterm(srv, { geometry: '60x10+10+10' });
    const before = await srv.screenshotRgba();
    await typeText(srv, 'hello deskrec\n', term.window);
    // xterm echoes what cat reads: the text shows once xterm has drawn it.
    const after = await waitForScreenChange(() => srv.screenshotRgba(), before, 50);
    expectPlausible(after, 640, 480);
    expect(countDifferentPixels(before, after)).toBeGreaterThan(50);
    await srv.stop();
  });

  timed('VeNCrypt types: TLSVnc and X509None list the right sub-types, with a CA file for X509', async () => {
    const srv = await startXvnc({ width: 320, height: 240, security: ['X509None', 'TLSVnc'] });
    expect(srv.caFile).toMatch(/cert\.pem$/);
    const p = await probeRfb(srv.host, srv.port, { vencrypt: true });
    expect(p.securityTypes).toEqual([SecurityType.VeNCrypt]);
    expect(p.vencrypt?.subtypes).toEqual([VeNCryptSubtype.X509None, VeNCryptSubtype.TLSVnc]);
    await srv.stop();
  });

  timed('quirk: the pointer is drawn into the framebuffer unless the client has the Cursor pseudo-encoding and put it there', async () => {
    const srv = await startXvnc({ width: 320, height: 240, security: 'None', pointer: 'visible' });
    // X's root cursor is blank in this Xvnc; xterm's I-beam under the pointer (left at the centre) is not.
    await startScrollingXterm(srv, { geometry: '30x8+100+80' });
    srv.pauseClients();
    const shot = await waitForStillScreen(() => srv.screenshotRgba()); // xwd never shows the pointer
    const plain = await grabRawFrame(srv.host, srv.port);
    expect(countDifferentPixels(plain.image, shot)).toBeGreaterThan(0);
    const announced = await grabRawFrame(srv.host, srv.port, { cursorPseudo: true });
    expect(countDifferentPixels(announced.image, shot)).toBeGreaterThan(0); // pointer not where this client left it
    const owned = await grabRawFrame(srv.host, srv.port, { cursorPseudo: true, pointer: { x: 160, y: 120 } });
    expect(owned.encodings).toContain(-239);
    expect(countDifferentPixels(owned.image, shot)).toBe(0);
    await srv.stop();
  });

  timed('stop leaves nothing behind', async () => {
    const srv = await startXvnc({ width: 320, height: 240, security: 'None' });
    const xterm = await startScrollingXterm(srv, { geometry: '40x10+0+0' });
    srv.pauseClients();
    await srv.stop();
    expect(xterm.process.exitCode !== null || xterm.process.signalCode !== null).toBe(true);
    await expect(probeRfb(srv.host, srv.port, { timeoutMs: 1000 })).rejects.toThrow();
    await stopAllServers();
    expect(liveServers()).toEqual([]);
  });
});

describe('start-up failures', () => {
  /** Asserts that starting rejects with `message` and that the temp dir it names is gone. */
  async function failsCleanly(start: Promise<unknown>, message: RegExp): Promise<void> {
    const err = await start.then(() => new Error('started'), (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const text = err instanceof Error ? err.message : '';
    expect(text).toMatch(message);
    const dir = /cleaned up (\S+)\)/.exec(text)?.[1] ?? '';
    expect(dir).toMatch(/deskrec-(xvnc|qemu)-/);
    expect(existsSync(dir)).toBe(false);
  }

  timed('a bad option or a missing user fails fast, with the log, leaving nothing behind', async () => {
    await failsCleanly(startXvnc({ width: 100, height: 100, security: 'Plain' }), /needs opts\.user/);
    await failsCleanly(startXvnc({ width: 100, height: 100, security: 'None', extraArgs: ['-NoSuchOption'] }), /Xvnc failed to start/);
    expect(liveServers()).toEqual([]);
  });
});

describe('QEMU', () => {
  timed('animated guest: banner, None offered, it draws, pausing holds it still, Raw read equals screendump', async () => {
    const q = await startQemuVnc();
    expect(q.version).toMatch(/^\d+\.\d+\.\d+$/);
    const p = await probeRfb(q.host, q.port);
    expect(p.banner).toBe('RFB 003.008');
    expect(p.securityTypes).toEqual([SecurityType.None]);
    const m1 = await q.screenshotRgba();
    // The guest redraws every cell every 100 ms (of its own time, however slowly the machine runs it).
    const m2 = await waitForScreenChange(() => q.screenshotRgba(), m1, 1000);
    expect(countDifferentPixels(m1, m2)).toBeGreaterThan(1000);

    await q.pause();
    const a = await q.screenshotRgba();
    await sleep(1000); // the claim itself: a paused guest stays still for a while (here 1 s)
    const b = await q.screenshotRgba();
    expectPlausible(a, 720, 400, 9); // VGA text mode 80x25 of 9x16 cells; 8 foreground colours on blue
    expect(pixelAt(a, 0, 0)).toBe(VGA_BLUE);
    expect(countDifferentPixels(a, b)).toBe(0);
    const raw = await grabRawFrame(q.host, q.port);
    expect(countDifferentPixels(raw.image, a)).toBe(0);
    await q.resume();
    await q.stop();
  });

  timed('diskless SeaBIOS with a password: VncAuth only; text stays put once paused', async () => {
    const q = await startQemuVnc({ guest: 'bios', password: 'secret12', lossy: true });
    const p = await probeRfb(q.host, q.port);
    expect(p.banner).toBe('RFB 003.008');
    expect(p.securityTypes).toEqual([SecurityType.VncAuth]);
    await q.setPassword('other123');
    await q.pause();
    const a = await q.screenshotRgba();
    await sleep(1000); // the claim itself: a paused guest stays still, blinking cursor included (here 1 s)
    const b = await q.screenshotRgba();
    expectPlausible(a, 720, 400, 2); // SeaBIOS's grey text on black
    expect(countDifferentPixels(a, b)).toBe(0);
    await q.stop();
    expect(liveServers()).toEqual([]);
  });
});
