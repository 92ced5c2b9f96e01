/**
 * Tests of the SPICE harness itself (test/helpers/servers/spice*.ts, guest.ts): the tiny guest builds from
 * Debian packages (cached), QEMU boots it with QXL and with standard VGA, the guest's coloured text shows
 * at the DRM resolution, a paused screen holds still, QEMU's SPICE server answers an independent link
 * handshake (with and without a password, over TCP and TLS), and spice-gtk's `spicy-screenshot` sees
 * exactly what QMP `screendump` shows — the second oracle for the SPICE client's tests.
 */
import { existsSync } from 'node:fs';
import { buildGuest, type GuestImage } from '../helpers/servers/guest';
import { countDifferentPixels, distinctColours, pixelAt, type RgbaImage } from '../helpers/servers/image';
import { sleep } from '../helpers/servers/proc';
import { liveServers, useServerCleanup } from '../helpers/servers/registry';
import { GUEST_SCREEN_SIZE, startQemuSpice, type SpiceImageCompression } from '../helpers/servers/spice';
import { probeSpiceLink, SPICE_MAGIC, SpiceChannel, SpiceLinkErr, type SpiceLinkReply } from '../helpers/servers/spice-link';
import { testTimeoutFor, waitFor, waitForScreenChange } from '../helpers/wait';
import { timedTests } from '../helpers/timed';

useServerCleanup();

const { timed, notes } = timedTests('SPICE harness', testTimeoutFor(1, 90000));

/** The most frequent colours of a picture, as hex with their share. */
function topColours(img: RgbaImage, n = 6): string {
  const counts = new Map<number, number>();
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const c = pixelAt(img, x, y);
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
  }
  const total = img.width * img.height;
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([c, k]) => `#${c.toString(16).padStart(6, '0')} ${(100 * k / total).toFixed(1)}%`).join(', ');
}

function expectLinkOk(r: SpiceLinkReply): void {
  expect(r.magic).toBe(SPICE_MAGIC);
  expect([r.major, r.minor]).toEqual([2, 2]);
  expect(r.error).toBe(SpiceLinkErr.OK);
  expect(r.pubKey.length).toBe(162);
  expect(r.pubKey[0]).toBe(0x30); // DER SEQUENCE (SubjectPublicKeyInfo)
  expect(r.size).toBe(4 + 162 + 12 + 4 * (r.commonCaps.length + r.channelCaps.length));
}

let guest: GuestImage;

beforeAll(async () => {
  guest = await buildGuest();
  notes.push(`  guest: ${guest.built ? 'built' : 'cached'} in ${guest.ms} ms (${guest.info.package ?? '?'}; insmod ${guest.info.modules ?? '?'})`);
}, 300000);

describe.each(['qxl', 'std'] as const)('-vga %s', (vga) => {
  timed('boots to coloured text, holds still when paused, SPICE links and spicy-screenshot equals screendump', async () => {
    expect(existsSync(guest.kernel) && existsSync(guest.initrd)).toBe(true);
    const srv = await startQemuSpice({ vga, guest });
    expect(srv.host).toBe('127.0.0.1');
    expect(srv.version).toMatch(/^\d+\.\d+\.\d+$/);
    const { image: first, bootMs } = await srv.waitForText(40000);
    notes.push(`  ${vga}: QEMU ${srv.version}, first coloured text after ${bootMs} ms, ${first.width}x${first.height}`);
    expect({ width: first.width, height: first.height }).toEqual(GUEST_SCREEN_SIZE[vga]);

    // The link handshake, while the guest runs (main channel, no caps, connection id 0).
    const link = await probeSpiceLink(srv.host, srv.port, { channelType: SpiceChannel.MAIN });
    expectLinkOk(link);
    notes.push(`  ${vga}: link reply size ${link.size}, common caps ${link.commonCaps.map((c) => `0x${c.toString(16)}`).join(',')}, main caps ${link.channelCaps.map((c) => `0x${c.toString(16)}`).join(',')}`);
    // disable-ticketing: the server still reads a ticket, and accepts any (here the empty one).
    expect((await probeSpiceLink(srv.host, srv.port, { ticket: '' })).authResult).toBe(SpiceLinkErr.OK);

    // More text: enough lines for the colours checked below, however long the guest takes to print them.
    await waitFor('8 colours of text on the screen', async () => (distinctColours(await srv.screenshotRgba(), 64) >= 8 ? true : undefined));
    await srv.pause();
    const a = await srv.screenshotRgba();
    await sleep(1000); // the claim itself: a paused guest stays still for a while (here 1 s)
    const b = await srv.screenshotRgba();
    expect({ width: a.width, height: a.height }).toEqual(GUEST_SCREEN_SIZE[vga]);
    expect(countDifferentPixels(a, b)).toBe(0);
    expect(distinctColours(a, 64)).toBeGreaterThanOrEqual(8);
    notes.push(`  ${vga}: paused screen ${a.width}x${a.height}, ${distinctColours(a)} colours; top: ${topColours(a)}`);

    const t0 = Date.now();
    const viaSpice = await srv.spicyScreenshotRgba();
    notes.push(`  ${vga}: spicy-screenshot ${viaSpice.width}x${viaSpice.height} in ${Date.now() - t0} ms, ${countDifferentPixels(viaSpice, a)} pixels differ from screendump`);
    expect(countDifferentPixels(viaSpice, a)).toBe(0);

    // Resumed, the text goes on.
    await srv.resume();
    const c = await waitForScreenChange(() => srv.screenshotRgba(), a);
    expect(countDifferentPixels(c, a)).toBeGreaterThan(0);
    if (vga === 'qxl') {
      // The quirk pause() works around: QMP `stop` alone, and the QXL screendump of the stopped VM repeats
      // the last screendump taken while it ran, while a SPICE client sees the text drawn since.
      // A fixed time on purpose: the guest must draw after the last running screendump, and looking
      // (a screendump while it runs) would refresh the very picture under test. It prints a line every
      // ~0.1 s of its own time, so 1 s of wall time is many lines even on a loaded machine.
      await sleep(1000);
      await srv.qmp.execute('stop');
      const stale = await srv.screenshotRgba();
      expect(countDifferentPixels(stale, c)).toBe(0);
      const live = await srv.spicyScreenshotRgba();
      const behind = countDifferentPixels(live, stale);
      notes.push(`  qxl: plain QMP stop: screendump equals the one taken 1 s earlier; spicy-screenshot differs in ${behind} pixels`);
      expect(behind).toBeGreaterThan(0);
    }
    await srv.stop();
    expect(liveServers()).toEqual([]);
  }, testTimeoutFor(3, 90000));
});

describe('security and options', () => {
  timed('password: link still answers OK, the ticket decides; spicy-screenshot logs in with it', async () => {
    const srv = await startQemuSpice({ vga: 'std', guest, password: 'deskrec-secret' });
    const link = await probeSpiceLink(srv.host, srv.port);
    expectLinkOk(link);
    expect((await probeSpiceLink(srv.host, srv.port, { ticket: 'deskrec-secret' })).authResult).toBe(SpiceLinkErr.OK);
    expect((await probeSpiceLink(srv.host, srv.port, { ticket: 'wrong' })).authResult).toBe(SpiceLinkErr.PERMISSION_DENIED);
    await srv.pause(); // std: QMP stop is enough; whatever the boot has drawn so far
    const truth = await srv.screenshotRgba();
    const viaSpice = await srv.spicyScreenshotRgba();
    expect(countDifferentPixels(viaSpice, truth)).toBe(0);
    notes.push(`  password: early-boot screen ${truth.width}x${truth.height}, spicy-screenshot equal`);
    await expect(srv.spicyScreenshotRgba({ password: 'wrong' })).rejects.toThrow(/exit 1/);
    await srv.stop();
  });

  timed('TLS: the TLS port links with the CA, the plain port too; spicy-screenshot over TLS equals screendump', async () => {
    const srv = await startQemuSpice({ vga: 'std', guest, tls: true, password: 'tls-pass' });
    expect(srv.tlsPort).toBeDefined();
    expect(srv.caFile).toBeDefined();
    const tlsPort = srv.tlsPort ?? -1;
    const caFile = srv.caFile ?? '';
    const overTls = await probeSpiceLink(srv.host, tlsPort, { tls: { caFile }, ticket: 'tls-pass' });
    expectLinkOk(overTls);
    expect(overTls.authResult).toBe(SpiceLinkErr.OK);
    expectLinkOk(await probeSpiceLink(srv.host, srv.port));
    // A client that trusts only the server certificate (not a CA, not self-signed) fails the handshake.
    await expect(probeSpiceLink(srv.host, tlsPort, { tls: { caFile: caFile.replace(/ca-cert\.pem$/, 'server-cert.pem') } }))
      .rejects.toThrow(/issuer|verify|certificate/i);
    // spice-gtk over TLS, trusting the CA, sees what screendump shows.
    await srv.pause();
    const truth = await srv.screenshotRgba();
    expect(countDifferentPixels(await srv.spicyScreenshotRgba({ tls: true }), truth)).toBe(0);
    await srv.stop();
  });

  timed('QEMU 7.2 accepts every image-compression value but lz4, and the other SPICE options', async () => {
    const accepted: SpiceImageCompression[] = ['off', 'auto_glz', 'auto_lz', 'quic', 'glz', 'lz'];
    for (const imageCompression of accepted) {
      const srv = await startQemuSpice({ vga: 'qxl', guest, imageCompression, jpegWanCompression: 'never', zlibGlzWanCompression: 'never', streamingVideo: 'off' });
      expect(srv.commandLine.join(' ')).toContain(`image-compression=${imageCompression}`);
      expectLinkOk(await probeSpiceLink(srv.host, srv.port));
      await srv.stop();
    }
    for (const [jpegWanCompression, streamingVideo] of [['always', 'all'], ['auto', 'filter']] as const) {
      const srv = await startQemuSpice({ vga: 'std', guest, jpegWanCompression, streamingVideo });
      expectLinkOk(await probeSpiceLink(srv.host, srv.port));
      await srv.stop();
    }
    const lz4 = 'lz4' as SpiceImageCompression; // not in the type on purpose: QEMU rejects it
    await expect(startQemuSpice({ vga: 'std', guest, imageCompression: lz4 })).rejects.toThrow(/invalid image compression: lz4/);
    expect(liveServers()).toEqual([]);
  });
});
