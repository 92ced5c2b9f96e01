/**
 * The SPICE link and main channel against QEMU's real SPICE server: the main channel links (with and
 * without a ticket, over TCP and over TLS), gets INIT with a session id and the channel list; a wrong
 * password is an AuthError. (The display channel comes next; this pins the groundwork to a real server.)
 */
import { readFileSync } from 'node:fs';
import { AuthError } from '../../src/errors';
import { SpiceChannel } from '../../src/protocol/spice/channel';
import { CHANNEL } from '../../src/protocol/spice/constants';
import { MainChannel, type MainInit } from '../../src/protocol/spice/main-channel';
import { connectTcp } from '../../src/transport/tcp';
import { buildGuest } from '../helpers/servers/guest';
import { startQemuSpice } from '../helpers/servers/spice';
import { useServerCleanup } from '../helpers/servers/registry';

useServerCleanup();

// The guest build (cached after the first; minutes on a fresh, loaded machine) is set-up with its own
// bound, not part of the tests' 60 s.
beforeAll(() => buildGuest(), 300000);

async function linkMain(port: number, password: string | null, tls?: { ca: Buffer }): Promise<{ init: MainInit; channels: { type: number; id: number }[] } | Error> {
  const transport = await connectTcp({ host: '127.0.0.1', port }, { sessionStart: performance.now() });
  if (tls !== undefined) await transport.startTls({ anonymous: false, insecure: false, ca: tls.ca, servername: '127.0.0.1' });
  return new Promise((resolve) => {
    let init: MainInit | null = null;
    let main: MainChannel | null = null;
    const ch = new SpiceChannel(transport, { connectionId: 0, channelType: CHANNEL.MAIN, channelId: 0, channelCaps: [], password, name: 'main' }, {
      ready: () => undefined,
      message: (type, body) => { main?.message(type, body); },
      closed: (err) => { resolve(err ?? new Error('closed before the channel list')); },
    });
    main = new MainChannel((type, body) => { ch.send(type, body); }, {
      init: (i) => { init = i; },
      channels: (list) => {
        if (init !== null) resolve({ init, channels: list });
        ch.close();
      },
    });
    ch.start();
  });
}

describe('SPICE main channel against QEMU', () => {
  test('links without a ticket and gets INIT and the channel list', async () => {
    const server = await startQemuSpice({ vga: 'std' });
    try {
      const r = await linkMain(server.port, null);
      if (r instanceof Error) throw r;
      expect(r.init.sessionId).not.toBe(0);
      const types = r.channels.map((c) => c.type);
      expect(types).toEqual(expect.arrayContaining([CHANNEL.DISPLAY, CHANNEL.INPUTS, CHANNEL.CURSOR]));
    } finally {
      await server.stop();
    }
  }, 60000);

  test('with a password: the right ticket links, a wrong one is AUTH_FAILED; TLS works with the CA', async () => {
    const server = await startQemuSpice({ vga: 'std', password: 'sp1ce', tls: true });
    try {
      const ok = await linkMain(server.port, 'sp1ce');
      expect(ok).not.toBeInstanceOf(Error);
      const bad = await linkMain(server.port, 'wrong');
      expect(bad).toBeInstanceOf(AuthError);
      expect((bad as AuthError).code).toBe('AUTH_FAILED');
      if (server.tlsPort === undefined || server.caFile === undefined) throw new Error('no TLS port');
      const viaTls = await linkMain(server.tlsPort, 'sp1ce', { ca: readFileSync(server.caFile) });
      expect(viaTls).not.toBeInstanceOf(Error);
    } finally {
      await server.stop();
    }
  }, 60000);
});
