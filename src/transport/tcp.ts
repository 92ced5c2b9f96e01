/** TCP (and TLS-upgraded TCP) transport for live sessions. */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectError } from '../errors';
import { MAX_UNSENT_BYTES, type TlsOptions, type Transport, type TransportHandlers, type TransportTap } from './transport';

/** How to reach a server. */
export interface TcpTarget {
  host: string;
  port: number;
}

/** Opens a TCP connection; a refused, unreachable or slow connection is a ConnectError with a stable code. */
export function connectTcp(target: TcpTarget, opts: { stream?: number; sessionStart: number; timeoutMs?: number; taps?: TransportTap[]; signal?: AbortSignal }): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const remote = `${target.host}:${target.port}`;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError('CONNECT_TIMEOUT', `no answer from ${remote} within ${(opts.timeoutMs ?? 10000) / 1000} s`));
    }, opts.timeoutMs ?? 10000);
    const onAbort = (): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ConnectError('CONNECT_ABORTED', `connecting to ${remote} was cancelled`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const code = err.code === 'ECONNREFUSED' ? 'CONNECT_REFUSED'
        : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? 'CONNECT_UNKNOWN_HOST'
          : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' ? 'CONNECT_UNREACHABLE' : 'CONNECT_FAILED';
      const what = code === 'CONNECT_REFUSED' ? 'connection refused' : code === 'CONNECT_UNKNOWN_HOST' ? 'unknown host' : err.message;
      reject(new ConnectError(code, `cannot connect to ${remote}: ${what}`, { cause: err }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      // A server that vanishes without a FIN (power loss, a dropped NAT entry) is found by the kernel's
      // probes instead of never; a still screen sends nothing, so silence alone proves nothing.
      socket.setKeepAlive(true, KEEPALIVE_MS);
      resolve(new TcpTransport(socket, remote, opts.stream ?? 0, opts.sessionStart, opts.taps ?? []));
    });
  });
}

/** Idle time before the kernel starts probing a silent connection (SO_KEEPALIVE). */
const KEEPALIVE_MS = 30000;

/**
 * Socket errors that mean the peer has closed its end: a reset (it closed with our last bytes unread, or
 * it was killed) or a broken pipe (we wrote after it had gone). A server that shuts down cleanly while
 * deskrec is sending its next update request ends this way as often as with a plain FIN.
 */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_WRITE_AFTER_END']);

/** A connected socket behind the Transport interface. */
class TcpTransport implements Transport {
  private socket: net.Socket;
  private handlers: TransportHandlers | null = null;
  private early: { data: Uint8Array; t_ms: number }[] = [];
  private closedWith: { err: Error | null } | null = null;
  private upgrading = false;
  /** socket.write() returned false: the socket buffer is full and 'drain' will follow. */
  private needDrain = false;
  lastReceivedMs: number;

  constructor(socket: net.Socket, readonly remote: string, readonly stream: number, private readonly sessionStart: number, private readonly taps: TransportTap[]) {
    this.socket = socket;
    this.lastReceivedMs = this.now();
    this.listen(socket);
  }

  now(): number {
    return performance.now() - this.sessionStart;
  }

  get congested(): boolean {
    return this.needDrain && this.closedWith === null;
  }

  private listen(s: net.Socket): void {
    s.on('data', (chunk: Buffer) => {
      const data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const t = Math.round(this.now() * 1000);
      this.lastReceivedMs = t / 1000;
      for (const tap of this.taps) tap.chunk(this.stream, 'in', data, t);
      if (this.handlers === null) {
        this.early.push({ data, t_ms: t / 1000 });
        return;
      }
      // What the handler sends while it parses this chunk goes out in one write: a VNC server that fences each
      // update (TigerVNC) gets its fence replies, two per received chunk on the live VNC bench, together.
      s.cork();
      try {
        this.handlers.data(data, t / 1000);
      } finally {
        s.uncork();
      }
    });
    s.on('drain', () => {
      this.needDrain = false;
      if (this.closedWith === null) this.handlers?.drain?.();
    });
    s.on('error', (err: NodeJS.ErrnoException) => { this.finish(err.code !== undefined && PEER_GONE.has(err.code) ? null : err); });
    s.on('close', () => { if (!this.upgrading) this.finish(null); });
  }

  private finish(err: Error | null): void {
    if (this.closedWith !== null) return;
    this.closedWith = { err };
    this.handlers?.close(err);
  }

  attach(h: TransportHandlers): void {
    this.handlers = h;
    const early = this.early;
    this.early = [];
    for (const c of early) h.data(c.data, c.t_ms);
    if (this.closedWith !== null) h.close(this.closedWith.err);
  }

  write(data: Uint8Array, opts?: { secret?: boolean }): void {
    if (this.closedWith !== null) return;
    if (this.socket.writableLength + data.length > MAX_UNSENT_BYTES) {
      // The peer has not read a mebibyte of requests and acknowledgements: it is not reading at all.
      // Holding more would only grow memory until the process dies; end the session instead.
      const kib = Math.round(this.socket.writableLength / 1024);
      this.socket.destroy();
      this.finish(new ConnectError('SERVER_NOT_READING', `${this.remote} stopped reading what deskrec sends (${kib} KiB waiting); closing the connection`));
      return;
    }
    const t = Math.round(this.now() * 1000);
    const recorded = opts?.secret === true ? new Uint8Array(data.length) : data;
    for (const tap of this.taps) tap.chunk(this.stream, 'out', recorded, t);
    if (!this.socket.write(data)) this.needDrain = true;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  startTls(opts: TlsOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('drain');
    return new Promise((resolve, reject) => {
      this.upgrading = true;
      const secure = tls.connect({
        socket: plain,
        servername: opts.servername !== undefined && net.isIP(opts.servername) === 0 ? opts.servername : undefined,
        ca: opts.ca,
        rejectUnauthorized: !opts.insecure && !opts.anonymous,
        // VeNCrypt's TLS* subtypes use anonymous Diffie-Hellman, which only TLS ≤ 1.2 has and OpenSSL
        // allows only at security level 0.
        ...(opts.anonymous ? { ciphers: 'aNULL:!eNULL:@SECLEVEL=0', maxVersion: 'TLSv1.2' as const, minVersion: 'TLSv1' as const } : {}),
        checkServerIdentity: opts.insecure ? (): undefined => undefined : tls.checkServerIdentity,
      });
      secure.once('secureConnect', () => {
        secure.removeAllListeners('error');
        this.socket = secure;
        this.needDrain = false;
        this.upgrading = false;
        this.listen(secure);
        resolve();
      });
      secure.once('error', (err: Error) => {
        this.upgrading = false;
        reject(new ConnectError('TLS_FAILED', `TLS handshake with ${this.remote} failed: ${err.message}`, { cause: err }));
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
