/**
 * A VNC server that replays a recorded session: for every connection it sends the server's bytes of a
 * `.deskcap` (KIND.IN records of its one stream) at their recorded times and ignores what the client
 * sends. deskrec's own client asks for the same things in the same order as when the capture was made, so
 * the recorded answers fit; a client that asked for something else would see a protocol error, which is
 * what a replay of another client's session would deserve. After the last record the connection stays
 * open and silent (`end: 'hold'`, a still screen), or is closed (`end: 'close'`: the server went away, and
 * a client that reconnects gets the session again from its start — RFB has one handshake per connection).
 */
import * as net from 'node:net';
import { captureRecords, readCapture } from '../../../src/capture/deskcap/reader';
import { KIND } from '../../../src/capture/deskcap/format';

export interface ReplayRfbServer {
  port: number;
  connections(): number;
  close(): void;
}

/** Serves `file` on 127.0.0.1 (a free port). `speed` > 1 replays faster than recorded. */
export async function startReplayRfb(file: string, opts: { end?: 'hold' | 'close'; speed?: number } = {}): Promise<ReplayRfbServer> {
  const capture = readCapture(file);
  if (capture.header.protocol !== 'vnc') throw new Error(`${file}: a ${capture.header.protocol} capture, not VNC`);
  const chunks: { t_ms: number; data: Buffer }[] = [];
  for (const r of captureRecords(capture)) {
    if (r.kind === KIND.IN) chunks.push({ t_ms: r.t_us / 1000, data: Buffer.from(r.data) });
  }
  const speed = opts.speed ?? 1;
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => { sockets.delete(socket); });
    socket.on('error', () => { /* the client hung up */ });
    // What the client sends is read and dropped (so its writes never block).
    socket.on('data', () => undefined);
    const began = performance.now();
    void (async (): Promise<void> => {
      for (const c of chunks) {
        const due = began + c.t_ms / speed;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        if (socket.destroyed) return;
        socket.write(c.data);
      }
      if (opts.end === 'close') socket.end();
    })();
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('replay RFB server: no port');
  return {
    port: addr.port,
    connections: () => accepted,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
