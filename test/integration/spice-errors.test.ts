/**
 * `deskrec record spice://…` against QEMU's SPICE server when things are not plain: TLS (spice+tls:// with
 * the CA, and without it), a wrong password, nothing listening, and the server going away mid-session —
 * exit codes, one stderr line `deskrec: CODE: …`, session.json's endReason, a finalised MP4, and no
 * password anywhere in the output.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { exitedWithin, expectFinalisedMp4, filesUnder, oneErrorLine } from '../helpers/cli-errors';
import { buildGuest } from '../helpers/servers/guest';
import { freeTcpPort } from '../helpers/servers/ports';
import { useServerCleanup } from '../helpers/servers/registry';
import { GUEST_SCREEN_SIZE, startQemuSpice } from '../helpers/servers/spice';
import { pngFrames, sessionJson, startRecording, waitForFrames, waitForMp4Frames } from '../helpers/record';
import { testTimeoutFor, WAIT_MS } from '../helpers/wait';

useServerCleanup();

// The guest build (cached after the first) is set-up with its own bound, not part of any test's time.
beforeAll(() => buildGuest(), 300000);

/** Start-up (≤ 20 s), the guest's boot (waitForText, ≤ 30 s) and checking: on top of the waits. */
const SPICE_OTHER_MS = 120000;

describe('SPICE over TLS and with a password', () => {
  test('spice+tls:// with --tls-ca and --password-file records; without the CA it is TLS_FAILED; a wrong password is AUTH_FAILED', async () => {
    const server = await startQemuSpice({ vga: 'std', password: 'tls-s3cret', tls: true });
    try {
      if (server.tlsPort === undefined || server.caFile === undefined) throw new Error('no TLS port');
      await server.waitForText();
      const pwDir = path.dirname(server.caFile);
      const pwFile = path.join(pwDir, 'pw');
      writeFileSync(pwFile, 'tls-s3cret\n', { mode: 0o600 });

      // Recorded over TLS with the password from a file: stopped once it has more than 3 frames (the
      // guest's lines, however long they take), not after a fixed time that a loaded machine may fill
      // with fewer.
      const ok = startRecording(`spice+tls://127.0.0.1:${server.tlsPort}`, ['--format', 'mp4+png', '--tls-ca', server.caFile, '--password-file', pwFile]);
      await waitForFrames(ok, 4);
      expect(await ok.stop()).toBe(0);
      expect(ok.stderr()).toBe('');
      const s = sessionJson(ok.dir) as unknown as { endReason: string; target: string; source: { frames: number } };
      expect(s.endReason).toBe('signal');
      expect(s.target).toBe(`spice+tls://127.0.0.1:${server.tlsPort}`);
      expect(pngFrames(ok.dir).length).toBeGreaterThan(3);
      expectFinalisedMp4(path.join(ok.dir, 'display.mp4'), GUEST_SCREEN_SIZE.std.width, GUEST_SCREEN_SIZE.std.height);
      for (const f of filesUnder(ok.dir)) expect(readFileSync(f).includes(Buffer.from('tls-s3cret'))).toBe(false);

      // --duration over TLS ends the session by itself (what it recorded in that time is not the point).
      const timed = startRecording(`spice+tls://127.0.0.1:${server.tlsPort}`, ['--format', 'png', '--duration', '3', '--tls-ca', server.caFile, '--password-file', pwFile]);
      expect(await exitedWithin(timed, WAIT_MS)).toBe(0);
      expect(timed.stderr()).toBe('');
      expect(sessionJson(timed.dir).endReason).toBe('duration');

      const untrusted = startRecording(`spice+tls://127.0.0.1:${server.tlsPort}`, ['--duration', '3', '--password-file', pwFile]);
      expect(await exitedWithin(untrusted, WAIT_MS)).toBe(4);
      oneErrorLine(untrusted, /TLS_FAILED/);

      const wrong = startRecording(`spice://127.0.0.1:${server.port}`, ['--duration', '3'], { DESKREC_SPICE_PASSWORD: 'not-the-one' });
      expect(await exitedWithin(wrong, WAIT_MS)).toBe(5);
      oneErrorLine(wrong, /AUTH_FAILED/);
      expect(sessionJson(wrong.dir).endReason).toMatch(/^error: AUTH_FAILED: /);
      expect(wrong.stderr()).not.toContain('not-the-one');
      for (const f of filesUnder(wrong.dir)) expect(readFileSync(f).includes(Buffer.from('not-the-one'))).toBe(false);
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(6, SPICE_OTHER_MS));
});

describe('SPICE connection failures', () => {
  test('nothing listening: exit 4, CONNECT_REFUSED', async () => {
    const port = await freeTcpPort();
    const rec = startRecording(`spice://127.0.0.1:${port}`, []);
    expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
    expect(oneErrorLine(rec, /CONNECT_REFUSED/)).toContain(`127.0.0.1:${port}`);
  }, testTimeoutFor(1));

  test('a password in the URL is refused before connecting', async () => {
    const rec = startRecording('spice://:pw@127.0.0.1:5900', []);
    expect(await exitedWithin(rec, WAIT_MS)).toBe(2);
    oneErrorLine(rec, /SECRET_IN_URL/);
  }, testTimeoutFor(1));

  test('the server quits mid-session: the MP4 is finalised, endReason says why, exit 4', async () => {
    const server = await startQemuSpice({ vga: 'qxl' });
    let rec;
    try {
      await server.waitForText();
      rec = startRecording(`spice://127.0.0.1:${server.port}`, ['--format', 'mp4']);
      // Mid-session: the MP4 on disk already holds frames (MP4 only: no frames.jsonl to count).
      await waitForMp4Frames(rec, 3);
    } finally {
      await server.stop();
    }
    expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
    oneErrorLine(rec, /SERVER_CLOSED|CONNECTION_LOST/);
    expect(sessionJson(rec.dir).endReason).toMatch(/^error: (SERVER_CLOSED|CONNECTION_LOST): /);
    expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), GUEST_SCREEN_SIZE.qxl.width, GUEST_SCREEN_SIZE.qxl.height);
  }, testTimeoutFor(2, SPICE_OTHER_MS));
});
