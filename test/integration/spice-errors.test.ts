/**
 * `deskrec record spice://…` against QEMU's SPICE server when things are not plain: TLS (spice+tls:// with
 * the CA, and without it), a wrong password, nothing listening, and the server going away mid-session —
 * exit codes, one stderr line `deskrec: CODE: …`, session.json's endReason, a finalised MP4, and no
 * password anywhere in the output.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { exitedWithin, expectFinalisedMp4, filesUnder, oneErrorLine } from '../helpers/cli-errors';
import { freeTcpPort } from '../helpers/servers/ports';
import { sleep } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { GUEST_SCREEN_SIZE, startQemuSpice } from '../helpers/servers/spice';
import { pngFrames, sessionJson, startRecording } from '../helpers/record';

useServerCleanup();

describe('SPICE over TLS and with a password', () => {
  test('spice+tls:// with --tls-ca and --password-file records; without the CA it is TLS_FAILED; a wrong password is AUTH_FAILED', async () => {
    const server = await startQemuSpice({ vga: 'std', password: 'tls-s3cret', tls: true });
    try {
      if (server.tlsPort === undefined || server.caFile === undefined) throw new Error('no TLS port');
      await server.waitForText();
      const pwDir = path.dirname(server.caFile);
      const pwFile = path.join(pwDir, 'pw');
      writeFileSync(pwFile, 'tls-s3cret\n', { mode: 0o600 });

      const ok = startRecording(`spice+tls://127.0.0.1:${server.tlsPort}`, ['--format', 'mp4+png', '--duration', '3', '--tls-ca', server.caFile, '--password-file', pwFile]);
      expect(await exitedWithin(ok, 30000)).toBe(0);
      expect(ok.stderr()).toBe('');
      const s = sessionJson(ok.dir) as unknown as { endReason: string; target: string; source: { frames: number } };
      expect(s.endReason).toBe('duration');
      expect(s.target).toBe(`spice+tls://127.0.0.1:${server.tlsPort}`);
      expect(pngFrames(ok.dir).length).toBeGreaterThan(3);
      expectFinalisedMp4(path.join(ok.dir, 'display.mp4'), GUEST_SCREEN_SIZE.std.width, GUEST_SCREEN_SIZE.std.height);
      for (const f of filesUnder(ok.dir)) expect(readFileSync(f).includes(Buffer.from('tls-s3cret'))).toBe(false);

      const untrusted = startRecording(`spice+tls://127.0.0.1:${server.tlsPort}`, ['--duration', '3', '--password-file', pwFile]);
      expect(await exitedWithin(untrusted, 20000)).toBe(4);
      oneErrorLine(untrusted, /TLS_FAILED/);

      const wrong = startRecording(`spice://127.0.0.1:${server.port}`, ['--duration', '3'], { DESKREC_SPICE_PASSWORD: 'not-the-one' });
      expect(await exitedWithin(wrong, 20000)).toBe(5);
      oneErrorLine(wrong, /AUTH_FAILED/);
      expect(sessionJson(wrong.dir).endReason).toMatch(/^error: AUTH_FAILED: /);
      expect(wrong.stderr()).not.toContain('not-the-one');
      for (const f of filesUnder(wrong.dir)) expect(readFileSync(f).includes(Buffer.from('not-the-one'))).toBe(false);
    } finally {
      await server.stop();
    }
  }, 120000);
});

describe('SPICE connection failures', () => {
  test('nothing listening: exit 4, CONNECT_REFUSED', async () => {
    const port = await freeTcpPort();
    const rec = startRecording(`spice://127.0.0.1:${port}`, []);
    expect(await exitedWithin(rec, 10000)).toBe(4);
    expect(oneErrorLine(rec, /CONNECT_REFUSED/)).toContain(`127.0.0.1:${port}`);
  }, 20000);

  test('a password in the URL is refused before connecting', async () => {
    const rec = startRecording('spice://:pw@127.0.0.1:5900', []);
    expect(await exitedWithin(rec, 10000)).toBe(2);
    oneErrorLine(rec, /SECRET_IN_URL/);
  }, 20000);

  test('the server quits mid-session: the MP4 is finalised, endReason says why, exit 4', async () => {
    const server = await startQemuSpice({ vga: 'qxl' });
    let rec;
    try {
      await server.waitForText();
      rec = startRecording(`spice://127.0.0.1:${server.port}`, ['--format', 'mp4']);
      await sleep(3000);
    } finally {
      await server.stop();
    }
    expect(await exitedWithin(rec, 20000)).toBe(4);
    oneErrorLine(rec, /SERVER_CLOSED|CONNECTION_LOST/);
    expect(sessionJson(rec.dir).endReason).toMatch(/^error: (SERVER_CLOSED|CONNECTION_LOST): /);
    expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), GUEST_SCREEN_SIZE.qxl.width, GUEST_SCREEN_SIZE.qxl.height);
  }, 90000);
});
