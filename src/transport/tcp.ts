/** TCP (and TLS-upgraded TCP) transport for live sessions. */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectError } from '../errors';
import type { TlsOptions, Transport, TransportHandlers, TransportTap } from './transport';

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
      resolve(new TcpTransport(socket, remote, opts.stream ?? 0, opts.sessionStart, opts.taps ?? []));
    });
  });
}

/** A connected socket behind the Transport interface. */
class TcpTransport implements Transport {
  private socket: net.Socket;
  private handlers: TransportHandlers | null = null;
  private early: { data: Uint8Array; t_ms: number }[] = [];
  private closedWith: { err: Error | null } | null = null;
  private upgrading = false;

  constructor(socket: net.Socket, readonly remote: string, readonly stream: number, private readonly sessionStart: number, private readonly taps: TransportTap[]) {
    this.socket = socket;
    this.listen(socket);
  }

  now(): number {
    return performance.now() - this.sessionStart;
  }

  private listen(s: net.Socket): void {
    s.on('data', (chunk: Buffer) => {
      const data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const t = Math.round(this.now() * 1000);
      for (const tap of this.taps) tap.chunk(this.stream, 'in', data, t);
      if (this.handlers === null) this.early.push({ data, t_ms: t / 1000 });
      else this.handlers.data(data, t / 1000);
    });
    s.on('error', (err) => { this.finish(err); });
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
    const t = Math.round(this.now() * 1000);
    const recorded = opts?.secret === true ? new Uint8Array(data.length) : data;
    for (const tap of this.taps) tap.chunk(this.stream, 'out', recorded, t);
    this.socket.write(data);
  }

  startTls(opts: TlsOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
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
