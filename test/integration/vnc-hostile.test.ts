/**
 * `deskrec record vnc://…` against hostile fake servers (test/helpers/servers/fake-rfb.ts) and a real Xvnc
 * stopped under it: a server that floods updates and never reads what deskrec sends, one that floods fence
 * requests (which must each be answered) and never reads, servers that stall the handshake (silent,
 * stopped half-way, a 64 KiB desktop name one byte at a time), one that never sends a picture, one that
 * goes quiet mid-session, and servers that close the session. Each ends with bounded memory, on time, with
 * the documented exit code and one clear line (docs/ERRORS.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exitedWithin, expectFinalisedMp4, oneErrorLine } from '../helpers/cli-errors';
import { recordHostile as recordHostileUrl, RSS_LIMIT_MIB } from '../helpers/peak-rss';
import {
  EMPTY_UPDATE, flood, handshake, rawUpdate, serverInitHeader, socketClosed, startFakeRfb, stopReading, trickle, versionAndSecurityNone,
  type FakeRfbServer,
} from '../helpers/servers/fake-rfb';
import { useServerCleanup } from '../helpers/servers/registry';
import { startScrollingXterm } from '../helpers/servers/x11-clients';
import { startXvnc } from '../helpers/servers/xvnc';
import { requireTool } from '../helpers/media';
import { sessionJson, startRecording, waitForMp4Frames } from '../helpers/record';
import { testTimeoutFor, waitFor, WAIT_MS } from '../helpers/wait';
import { Session } from '../../src/session/session';
import { openSource } from '../../src/sources/open';
import { ByteWriter } from '../../src/wire/writer';

useServerCleanup();

beforeAll(() => { requireTool('ffprobe'); });

const W = 64;
const H = 48;

/** `deskrec record` against `fake` (test/helpers/peak-rss.ts recordHostile: peak RSS watched). */
function recordHostile(fake: FakeRfbServer, args: string[], withinMs: number): ReturnType<typeof recordHostileUrl> {
  return recordHostileUrl(`vnc://127.0.0.1:${fake.port}`, ['--vnc-encodings', 'raw', ...args], withinMs);
}

describe('servers that flood and never read', () => {
  test('empty updates as fast as the socket takes them, nothing read back: RSS under 300 MiB, --duration holds, exit 0', async () => {
    const fake = await startFakeRfb(async (c) => {
      await handshake(c, W, H);
      c.socket.write(rawUpdate(0, 0, W, H, [40, 90, 200]));
      stopReading(c);
      // 16384 empty updates a write: deskrec used to answer every one with an update request of its own,
      // queued in its memory for a server that never reads them (3.9 GB in the issue).
      await flood(c.socket, Buffer.concat(Array.from({ length: 16384 }, () => EMPTY_UPDATE)));
    });
    const durationS = 8;
    try {
      const { rec, code, peakMiB, killed } = await recordHostile(fake, ['--format', 'mp4', '--duration', String(durationS)], (durationS + 5) * 1000);
      expect({ code, killed, stderr: rec.stderr() }).toEqual({ code: 0, killed: false, stderr: '' });
      expect(peakMiB).toBeGreaterThan(10);
      expect(peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      expect(sessionJson(rec.dir).endReason).toBe('duration');
      expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), W, H);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('fence requests (each must be answered) as fast as the socket takes them, nothing read back: exit 4 SERVER_NOT_READING, RSS under 300 MiB', async () => {
    const fake = await startFakeRfb(async (c) => {
      await handshake(c, W, H);
      c.socket.write(rawUpdate(0, 0, W, H, [40, 90, 200]));
      stopReading(c);
      // ServerFence with the request bit and no payload: the client must send a ClientFence back for each.
      const fence = new ByteWriter(9).u8(248).pad(3).u32(0x80000000).u8(0).finish();
      await flood(c.socket, Buffer.concat(Array.from({ length: 8192 }, () => fence)));
    });
    const durationS = 30;
    try {
      const { rec, code, peakMiB, killed } = await recordHostile(fake, ['--format', 'mp4', '--duration', String(durationS)], WAIT_MS);
      expect({ code, killed }).toEqual({ code: 4, killed: false });
      expect(oneErrorLine(rec, /SERVER_NOT_READING/)).toContain(`127.0.0.1:${fake.port} stopped reading`);
      expect(peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      const session = sessionJson(rec.dir);
      expect(session.endReason).toMatch(/^error: SERVER_NOT_READING: /);
      // Not the duration: the session ended when the backlog passed its bound.
      expect(session.endReason).not.toBe('duration');
      expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), W, H);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});

describe('servers that stall the handshake: exit 4 HANDSHAKE_TIMEOUT', () => {
  test('a server that accepts and says nothing: the default limit (15 s) ends it, not --duration', async () => {
    const fake = await startFakeRfb((c) => socketClosed(c.socket));
    try {
      const { rec, code } = await recordHostile(fake, ['--format', 'mp4', '--duration', '40'], WAIT_MS);
      expect(code).toBe(4);
      const line = oneErrorLine(rec, /HANDSHAKE_TIMEOUT/);
      expect(line).toContain(`127.0.0.1:${fake.port} did not finish the VNC handshake within 15 s (waiting for the server's protocol version)`);
      const session = sessionJson(rec.dir);
      expect(session.endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      expect(session.segments).toEqual([]);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('a server that stops after offering security None (no SecurityResult ever comes)', async () => {
    const fake = await startFakeRfb(async (c) => {
      c.socket.write(Buffer.from('RFB 003.008\n', 'latin1'));
      await c.reader.read(12);
      c.socket.write(Buffer.from([1, 1]));
      await c.reader.read(1);
      await socketClosed(c.socket);
    });
    try {
      const { rec, code } = await recordHostile(fake, ['--format', 'mp4', '--duration', '40', '--connect-timeout', '2'], WAIT_MS);
      expect(code).toBe(4);
      expect(oneErrorLine(rec, /HANDSHAKE_TIMEOUT/)).toContain('within 2 s (waiting for the security handshake (sec-result))');
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('--connect-timeout takes decimal seconds in 0.1..3600 only: anything else is exit 2 before connecting', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-args-'));
    try {
      for (const value of ['0x10', '1e3', '0', '3601', 'abc', '']) {
        const r = spawnSync(process.execPath, [path.resolve(__dirname, '../../bin/deskrec.js'), 'record', 'vnc://127.0.0.1:1', '--capture', dir, '--connect-timeout', value], { encoding: 'utf8' });
        expect({ value, status: r.status, stderr: r.stderr }).toEqual({ value, status: 2, stderr: expect.stringMatching(/^deskrec: BAD_ARGUMENT: .*\n$/) as unknown });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a 64 KiB desktop name sent one byte at a time', async () => {
    const nameLength = 64 * 1024;
    const fake = await startFakeRfb(async (c) => {
      await versionAndSecurityNone(c);
      c.socket.write(serverInitHeader(W, H, nameLength));
      // At one byte per 2 ms the name would take over two minutes: data keeps coming, the handshake never ends.
      await trickle(c.socket, Buffer.alloc(nameLength, 0x41), 2);
    });
    try {
      const { rec, code } = await recordHostile(fake, ['--format', 'mp4', '--duration', '40', '--connect-timeout', '3'], WAIT_MS);
      expect(code).toBe(4);
      expect(oneErrorLine(rec, /HANDSHAKE_TIMEOUT/)).toMatch(/within 3 s \(waiting for ServerInit \(\d+ bytes of it so far\)\)/);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});

describe('sessions without a picture, and silence', () => {
  test('a server that completes the handshake and never sends a picture: exit 4 NO_PICTURE, not a success', async () => {
    const fake = await startFakeRfb(async (c) => {
      await handshake(c, W, H);
      await socketClosed(c.socket); // reads (and ignores) every request until deskrec hangs up
    });
    try {
      const { rec, code } = await recordHostile(fake, ['--format', 'mp4', '--duration', '2'], WAIT_MS);
      expect(code).toBe(4);
      const line = oneErrorLine(rec, /NO_PICTURE/);
      expect(line).toMatch(new RegExp(`vnc://127\\.0\\.0\\.1:${fake.port} sent no picture in \\d+\\.\\d s \\(stopped by duration\\): nothing was recorded$`));
      const session = sessionJson(rec.dir);
      expect(session.endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      expect(session.segments).toEqual([]);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('a server that goes quiet mid-session: the session logs "no data … for N s", then "again" when data returns', async () => {
    let resume: () => void = () => undefined;
    const resumed = new Promise<void>((resolve) => { resume = resolve; });
    const fake = await startFakeRfb(async (c) => {
      await handshake(c, W, H);
      c.socket.write(rawUpdate(0, 0, W, H, [200, 30, 30]));
      await resumed;
      c.socket.write(rawUpdate(0, 0, W, H, [30, 200, 30]));
      await socketClosed(c.socket);
    });
    const logs: string[] = [];
    const session = new Session(openSource(`vnc://127.0.0.1:${fake.port}`, { vncEncodings: 'raw', connectTimeoutS: 0.5 }), { idleNoticeS: 0.5, log: (l) => { logs.push(l); } });
    try {
      await session.start();
      const target = `vnc://127.0.0.1:${fake.port}`;
      // (The connect timeout, 0.5 s, is shorter than this session: its deadline ends at the handshake.)
      const quiet = await waitFor('the "no data" notice', () => logs.find((l) => l.startsWith('no data from')), { detail: () => JSON.stringify(logs) });
      expect(quiet).toMatch(new RegExp(`^no data from ${target.replace(/[.]/g, '\\.')} for \\d+ s \\(a still screen sends none\\); still waiting$`));
      expect(session.stats().frames).toBe(1);
      resume();
      await waitFor('the "again" notice', () => logs.find((l) => l === `data from ${target} again`), { detail: () => JSON.stringify(logs) });
      await waitFor('the second picture', () => (session.stats().frames >= 2 ? true : undefined));
      const result = await session.stop();
      expect(result.end.reason).toBe('signal');
      // One notice per silent stretch, not one per check.
      expect(logs.filter((l) => l.startsWith('no data from')).length).toBe(1);
    } finally {
      await session.stop().catch(() => undefined);
      fake.close();
    }
  }, testTimeoutFor(3));
});

describe('a server that closes the session: exit 4 SERVER_CLOSED, "closed the session", never CONNECTION_LOST', () => {
  test('a fake server sends its last updates and closes while deskrec is still answering them (reset, broken pipe)', async () => {
    let close: () => void = () => undefined;
    const closeNow = new Promise<void>((resolve) => { close = resolve; });
    const fake = await startFakeRfb(async (c) => {
      await handshake(c, W, H);
      c.socket.write(rawUpdate(0, 0, W, H, [200, 30, 30]));
      await closeNow;
      // A busy server's last moments: updates in flight, the client's requests for more arriving, and
      // then the server closes its socket — with requests unread, so the kernel answers with a reset, and
      // the client's next request meets a broken pipe. That is how a server shutting down usually looks.
      stopReading(c);
      await new Promise<void>((resolve) => { c.socket.write(Buffer.concat(Array.from({ length: 65536 }, () => EMPTY_UPDATE)), () => { resolve(); }); });
      c.socket.destroy();
    });
    try {
      const rec = startRecording(`vnc://127.0.0.1:${fake.port}`, ['--format', 'mp4', '--vnc-encodings', 'raw']);
      await waitForMp4Frames(rec, 1);
      close();
      expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
      const line = oneErrorLine(rec, /SERVER_CLOSED/);
      expect(line).toBe(`deskrec: SERVER_CLOSED: the server 127.0.0.1:${fake.port} closed the session`);
      expect(sessionJson(rec.dir).endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(2));

  test('Xvnc stopped with SIGTERM while it scrolls: the MP4 is finalised, SERVER_CLOSED', async () => {
    const server = await startXvnc({ width: 480, height: 320, security: 'None' });
    let stopped = false;
    try {
      await startScrollingXterm(server, { geometry: '50x12+8+8', intervalMs: 10 });
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4']);
      await waitForMp4Frames(rec, 6);
      await server.stop(); // SIGTERM: Xvnc closes its clients' connections and exits
      stopped = true;
      expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
      expect(oneErrorLine(rec, /SERVER_CLOSED/)).toBe(`deskrec: SERVER_CLOSED: the server 127.0.0.1:${server.port} closed the session`);
      expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), 480, 320);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      if (!stopped) await server.stop();
    }
  }, testTimeoutFor(2));
});
