/**
 * VeNCrypt against TigerVNC's Xvnc 1.12 (GnuTLS): the anonymous TLS sub-types (TLSNone, TLSVnc) and the
 * certificate ones (X509None, X509Vnc) verified against the harness's self-signed certificate with
 * --tls-ca, or not verified with --tls-insecure. Each records a short session whose last PNG frame, after
 * the X clients are frozen, equals Xvnc's own screenshot pixel for pixel, and session.json names the
 * sub-type that was negotiated. Without --tls-ca (or with the wrong CA) the certificate is refused: exit 4
 * and one line `deskrec: TLS_FAILED: …`.
 *
 * Finding: Node 20's OpenSSL 3.0 and Xvnc 1.12's GnuTLS agree on anonymous key exchange with the cipher
 * string tcp.ts already uses ('aNULL:!eNULL:@SECLEVEL=0', TLS 1.0–1.2): they settle on TLS 1.2 with
 * AECDH-AES256-SHA (TLS_ECDH_anon_WITH_AES_256_CBC_SHA, X25519), checked by hand with getCipher(); no
 * DH parameters, curve or cipher-list change was needed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { makeSelfSignedCert, startXvnc, type XvncSecurity } from '../helpers/servers/xvnc';
import { startScrollingXterm } from '../helpers/servers/x11-clients';
import { exitedWithin } from '../helpers/cli-errors';
import { differingPixels, pngFrames, readPng, sessionJson, startRecording, waitForFrames, waitForLastFrame } from '../helpers/record';
import { testTimeoutFor, WAIT_MS, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

const PASSWORD = 'tls0pass';

interface Case {
  security: XvncSecurity;
  /** Extra CLI arguments; `CA` is replaced by the server's certificate file. */
  args: string[];
}

const CASES: [string, Case][] = [
  ['TLSNone', { security: 'TLSNone', args: [] }],
  ['TLSVnc (password from DESKREC_VNC_PASSWORD)', { security: 'TLSVnc', args: [] }],
  ['X509None with --tls-ca', { security: 'X509None', args: ['--tls-ca', 'CA'] }],
  ['X509Vnc with --tls-ca', { security: 'X509Vnc', args: ['--tls-ca', 'CA'] }],
  ['X509None with --tls-insecure and no CA', { security: 'X509None', args: ['--tls-insecure'] }],
];

describe('VeNCrypt with Xvnc', () => {
  test.each(CASES)('%s: the last frame equals xwd -root and session.json names the sub-type', async (_name, c) => {
    const server = await startXvnc({ width: 480, height: 320, security: c.security, password: PASSWORD });
    try {
      await startScrollingXterm(server, { geometry: '50x12+8+8', intervalMs: 40 });
      const args = c.args.map((a) => (a === 'CA' ? server.caFile ?? 'no-ca-file' : a));
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--cursor', 'none', ...args],
        { DESKREC_VNC_PASSWORD: PASSWORD });
      // More than 3 frames are expected below: the xterm's lines, as long as they take.
      await waitForFrames(rec, 4);
      server.pauseClients();
      const shot = await waitForStillScreen(() => server.screenshotRgba());
      await waitForLastFrame(rec, shot);
      const code = await rec.stop();
      expect(rec.stderr()).toBe('');
      expect(code).toBe(0);
      const frames = pngFrames(rec.dir);
      expect(frames.length).toBeGreaterThan(3);
      const last = frames[frames.length - 1];
      if (last === undefined) throw new Error('no frames');
      const got = await readPng(rec.dir, last.file);
      expect([got.width, got.height]).toEqual([480, 320]);
      expect(differingPixels(got.rgba, shot.rgba)).toBe(0);
      const session = sessionJson(rec.dir);
      expect(session.source?.server?.security).toBe(`VeNCrypt ${c.security}`);
      expect(session.endReason).toBe('signal');
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(4)); // frames, a still screen, the last frame, the stop

  test('X509None without --tls-ca or --tls-insecure, or with the wrong CA: the certificate is refused (exit 4, TLS_FAILED)', async () => {
    const server = await startXvnc({ width: 320, height: 240, security: 'X509None' });
    const other = mkdtempSync(path.join(tmpdir(), 'deskrec-otherca-'));
    try {
      const wrongCa = (await makeSelfSignedCert(other)).certFile;
      for (const args of [[], ['--tls-ca', wrongCa]]) {
        const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--cursor', 'none', ...args]);
        const code = await exitedWithin(rec, WAIT_MS);
        expect(code).toBe(4);
        const lines = rec.stderr().split('\n').filter((l) => l !== '');
        expect(lines).toHaveLength(1);
        // OpenSSL's own words: "self-signed certificate" (no CA given: the system store does not know it).
        expect(lines[0]).toMatch(/^deskrec: TLS_FAILED: TLS handshake with 127\.0\.0\.1:\d+ failed: .*(self-signed|certificate)/);
        const session = sessionJson(rec.dir);
        expect(session.endReason).toMatch(/^error: TLS_FAILED: /);
        expect(session.segments).toEqual([]);
        rmSync(rec.dir, { recursive: true, force: true });
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
      await server.stop();
    }
  }, testTimeoutFor(2));

  test('X509None whose certificate names another host: refused even with that certificate as the CA', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-wrongname-'));
    try {
      const certFile = path.join(dir, 'cert.pem');
      const keyFile = path.join(dir, 'key.pem');
      await runTool(requireCommand('openssl'), ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=wrong.example',
        '-addext', 'subjectAltName=DNS:wrong.example'], { timeoutMs: 15000 });
      const server = await startXvnc({ width: 320, height: 240, security: 'X509None', x509: { certFile, keyFile } });
      try {
        const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--tls-ca', certFile]);
        expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
        const lines = rec.stderr().split('\n').filter((l) => l !== '');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^deskrec: TLS_FAILED: .*does not match certificate's altnames/);
        rmSync(rec.dir, { recursive: true, force: true });
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, testTimeoutFor(1));
});
