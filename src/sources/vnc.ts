/** `vnc://` as a frame source: a TCP (optionally TLS) connection running the RFB client. */
import { connectTimeoutMs, handshakeTimeout, runLive, type FrameConsumer, type FrameSource, type InputCapabilities, type KeyInput, type RemoteInput, type SourceEnd } from './source';
import { ConnectError, InputError, UsageError } from '../errors';
import { connectTcp } from '../transport/tcp';
import type { Transport, TransportTap } from '../transport/transport';
import { DEFAULT_ENCODINGS, ENCODING_NAMES, RfbClient, type RfbOptions } from '../protocol/rfb/client';
import { inboundMarks } from '../capture/deskcap/marks';

/** Where and how to connect. */
export interface VncTarget {
  host: string;
  port: number;
  username: string | null;
}

/**
 * Parses `vnc://[user@]host[:port]`. A port below 100 is a display number, as VNC users write it
 * (`host:1` is port 5901); no port means 5900. A password in the URL is refused: secrets never go on the
 * command line, where other users can read them.
 */
export function parseVncUrl(url: URL): VncTarget {
  if (url.password !== '') {
    throw new UsageError('SECRET_IN_URL', 'put the VNC password in --password-file FILE or DESKREC_VNC_PASSWORD, never in the URL');
  }
  if (url.hostname === '') throw new UsageError('BAD_URL', `'${url.href}' has no host (try vnc://host:1)`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '') throw new UsageError('BAD_URL', `unexpected path or query in '${url.href}'`);
  let port = 5900;
  if (url.port !== '') {
    const n = Number(url.port);
    port = n < 100 ? 5900 + n : n;
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, username: url.username === '' ? null : decodeURIComponent(url.username) };
}

/** Parses `--vnc-encodings tight,zrle,…` into wire numbers. */
export function parseEncodingList(list: string): number[] {
  const out: number[] = [];
  for (const name of list.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x !== '')) {
    const n = ENCODING_NAMES[name];
    if (n === undefined) throw new UsageError('BAD_ARGUMENT', `unknown VNC encoding '${name}' (known: ${Object.keys(ENCODING_NAMES).join(', ')})`);
    out.push(n);
  }
  if (out.length === 0) throw new UsageError('BAD_ARGUMENT', '--vnc-encodings needs at least one encoding');
  return out;
}

/** Options of a VNC source beyond the target. */
export interface VncSourceOptions {
  password: string | null;
  encodings: number[] | null;
  lossyQuality: number | null;
  tlsCa: Buffer | undefined;
  tlsInsecure: boolean;
  taps: TransportTap[];
  /** Connecting and the handshake together, ms (default CONNECT_TIMEOUT_DEFAULT_S). */
  connectTimeoutMs?: number;
}

/** What an RFB client counted, for session.json (live and replayed VNC sessions alike). */
export function rfbCounts(client: RfbClient | null, frames: number): Record<string, unknown> {
  return {
    updates: client?.updates ?? 0,
    frames,
    lossy: client?.lossy ?? false,
    messages: { ...(client?.messageCounts ?? {}) },
    rectangles: { ...(client?.rectCounts ?? {}) },
  };
}

/** Records a VNC server. */
export class VncSource implements FrameSource {
  readonly protocol = 'vnc';
  readonly target: string;
  /** Filled in once the handshake is done (for session.json and logs). */
  info: { name: string; width: number; height: number; version: string; security: string } | null = null;
  private client: RfbClient | null = null;
  private transport: Transport | null = null;
  /** Frames handed to the consumer (a capture's END record stores it, so replays stop at the same frame). */
  framesDelivered = 0;
  /** Pointer, keys (keysyms) and clipboard to the server; INPUT_NOT_READY before ServerInit and after the end. */
  readonly input: RemoteInput = new VncInput(() => this.client);
  private readonly clipboardListeners: { listener: (text: string) => void; wanted: () => boolean }[] = [];

  now(): number | null {
    return this.transport?.now() ?? null;
  }

  /**
   * The remote's clipboard text while `wanted()` (default: always): as the server sends it (ServerCutText),
   * or, from an Extended Clipboard server that only announces a change, fetched then if anyone wants it.
   */
  onClipboard(listener: (text: string) => void, wanted: () => boolean = () => true): void {
    this.clipboardListeners.push({ listener, wanted });
  }

  constructor(private readonly where: VncTarget, private readonly opts: VncSourceOptions) {
    const host = where.host.includes(':') ? `[${where.host}]` : where.host;
    this.target = `vnc://${where.username === null ? '' : `${encodeURIComponent(where.username)}@`}${host}:${where.port}`;
  }

  addTap(tap: TransportTap): void {
    this.opts.taps.push(tap);
  }

  credentials(): { password: boolean; username: boolean } {
    return { password: this.opts.password !== null, username: this.where.username !== null };
  }

  describe(): Record<string, unknown> {
    return {
      server: this.info === null ? null : { name: this.info.name, version: this.info.version, security: this.info.security },
      ...rfbCounts(this.client, this.framesDelivered),
    };
  }

  idleMs(): number | null {
    const t = this.transport;
    return t === null ? null : t.now() - t.lastReceivedMs;
  }

  async run(consumer: FrameConsumer, run: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    const sessionStart = performance.now();
    const timeoutMs = this.opts.connectTimeoutMs ?? connectTimeoutMs(null);
    const transport = await connectTcp(this.where, { sessionStart, signal: run.signal, taps: this.opts.taps, timeoutMs });
    this.transport = transport;
    const options: RfbOptions = {
      password: this.opts.password,
      username: this.where.username,
      encodings: this.opts.encodings ?? DEFAULT_ENCODINGS,
      lossyQuality: this.opts.lossyQuality,
      compressLevel: null,
      tls: { ca: this.opts.tlsCa, insecure: this.opts.tlsInsecure, servername: this.where.host },
      // A --raw capture holds received bytes until the client has parsed them and zeroes the clipboard.
      inbound: inboundMarks(this.opts.taps, transport.stream),
    };
    return runLive(run, () => transport.now(), consumer, (hooks) => {
      const client = new RfbClient(transport, {
        ready: (info) => { this.info = info; hooks.ready(); },
        frame: (f) => { if (hooks.frame(f)) this.framesDelivered++; },
        clipboard: (text) => { for (const l of this.clipboardListeners) if (l.wanted()) l.listener(text); },
        wantsClipboard: () => this.clipboardListeners.some((l) => l.wanted()),
        // A clean close, a reset or a broken pipe after the server closed its end: the server ended it.
        closed: (err) => { hooks.finish(err ?? new ConnectError('SERVER_CLOSED', `the server ${transport.remote} closed the session`)); },
      }, options);
      this.client = client;
      return client;
    }, { timeoutMs, error: () => handshakeTimeout('VNC', transport.remote, timeoutMs, this.client?.handshakeStage ?? null) });
  }
}

/**
 * RemoteInput over the live RfbClient (RFC 6143 §7.5.4-§7.5.6): keysyms, absolute pointer, clipboard
 * (UTF-8 with an Extended Clipboard server, else Latin-1).
 */
class VncInput implements RemoteInput {
  constructor(private readonly client: () => RfbClient | null) {}

  capabilities(): InputCapabilities {
    // QEMU may switch PointerEvents to relative motion (PointerTypeChange); the client then sends deltas.
    const absolute = this.client()?.absolutePointer ?? true;
    return { absolutePointer: absolute, relativePointer: !absolute, keys: true, scancodes: false, clipboard: null, resize: this.client()?.canResize ?? false };
  }

  pointer(x: number, y: number, buttons: number): void {
    this.live().pointerEvent(x, y, buttons);
  }

  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void {
    this.live().wheelEvent(x, y, dx, dy, buttons);
  }

  key(k: KeyInput): void {
    // RFB servers take keysyms; a scancode the caller knows has no place in a plain KeyEvent.
    this.live().keyEvent(k.keysym, k.down);
  }

  resize(width: number, height: number): void {
    this.live().setDesktopSize(width, height);
  }

  clipboard(text: string): void {
    this.live().clientCutText(text);
  }

  private live(): RfbClient {
    const c = this.client();
    if (c === null) throw new InputError('INPUT_NOT_READY', 'the VNC connection has not started');
    return c;
  }
}
