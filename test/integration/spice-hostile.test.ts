/**
 * `deskrec record spice://…` against hostile fake servers (test/helpers/servers/fake-spice.ts): a TCP
 * server that accepts and says nothing, one that stops in the middle of the link, and one that floods
 * PINGs (each must be answered with a PONG) and never reads. Each ends on time with bounded memory, exit 4
 * and one clear line (docs/ERRORS.md).
 */
import { rmSync } from 'node:fs';
import { oneErrorLine } from '../helpers/cli-errors';
import { recordHostile as recordHostileUrl, RSS_LIMIT_MIB } from '../helpers/peak-rss';
import { acceptLink, ping, startFakeSpice, type FakeSpiceServer } from '../helpers/servers/fake-spice';
import { flood, socketClosed } from '../helpers/servers/fake-rfb';
import { sessionJson } from '../helpers/record';
import { testTimeoutFor, WAIT_MS } from '../helpers/wait';


/** `deskrec record` against `fake` (test/helpers/peak-rss.ts recordHostile: peak RSS watched). */
function recordHostile(fake: FakeSpiceServer, args: string[]): ReturnType<typeof recordHostileUrl> {
  return recordHostileUrl(`spice://127.0.0.1:${fake.port}`, ['--format', 'mp4', ...args], WAIT_MS);
}

describe('SPICE servers that stall the handshake: exit 4 HANDSHAKE_TIMEOUT', () => {
  test('a TCP server that accepts and says nothing', async () => {
    const fake = await startFakeSpice((c) => socketClosed(c.socket));
    try {
      const { rec, code } = await recordHostile(fake, ['--duration', '40', '--connect-timeout', '2']);
      expect(code).toBe(4);
      const line = oneErrorLine(rec, /HANDSHAKE_TIMEOUT/);
      expect(line).toContain(`127.0.0.1:${fake.port} did not finish the SPICE handshake within 2 s (waiting for the main channel's link header (0 of 16 bytes))`);
      const session = sessionJson(rec.dir);
      expect(session.endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      expect(session.segments).toEqual([]);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('a server that sends half a link reply header and stops', async () => {
    const fake = await startFakeSpice(async (c) => {
      await c.reader.read(16);
      // Half a link reply header: the magic and the version, then nothing.
      c.socket.write(Buffer.from([0x52, 0x45, 0x44, 0x51, 2, 0, 0, 0]));
      await socketClosed(c.socket);
    });
    try {
      const { rec, code } = await recordHostile(fake, ['--duration', '40', '--connect-timeout', '2']);
      expect(code).toBe(4);
      expect(oneErrorLine(rec, /HANDSHAKE_TIMEOUT/)).toContain('(waiting for the main channel\'s link header (8 of 16 bytes))');
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});

describe('a SPICE server that floods and never reads', () => {
  test('PINGs as fast as the socket takes them, no PONG read: exit 4 SERVER_NOT_READING, RSS under 300 MiB', async () => {
    const fake = await startFakeSpice(async (c) => {
      await acceptLink(c);
      c.socket.removeAllListeners('data');
      c.socket.pause();
      await flood(c.socket, Buffer.concat(Array.from({ length: 4096 }, (_, i) => ping(i))));
    });
    try {
      // The backlog's bound ends it within a few seconds, long before the default connect timeout (15 s).
      const { rec, code, peakMiB, killed } = await recordHostile(fake, ['--duration', '60']);
      expect({ code, killed }).toEqual({ code: 4, killed: false });
      expect(oneErrorLine(rec, /SERVER_NOT_READING/)).toContain(`127.0.0.1:${fake.port} stopped reading`);
      expect(peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});
