/**
 * `spice://host:port` and `spice+tls://host:tls-port` as a frame source: a SPICE session whose channels
 * are TCP connections (TLS from the first byte on a TLS port). `spice://host:port?tls-port=N` also knows
 * the TLS port, so a channel the server refuses in plaintext (NEED_SECURED, QEMU's `tls-channel=`) is
 * retried there, as spice-gtk does.
 */
import { connectTimeoutMs, handshakeTimeout, runLive, type FrameConsumer, type FrameSource, type InputCapabilities, type KeyInput, type RemoteInput, type SourceEnd } from './source';
import { AuthError, ConnectError, InputError, UsageError } from '../errors';
import { inboundMarks } from '../capture/deskcap/marks';
import { connectTcp } from '../transport/tcp';
import type { Transport, TransportTap } from '../transport/transport';
import { MAX_PASSWORD } from '../protocol/spice/constants';
import { SpiceSession, type ChannelOpener } from '../protocol/spice/session';

/** Where to connect. */
export interface SpiceTarget {
  host: string;
  /** Port of the first connection (the TLS port for spice+tls://). */
  port: number;
  /** The TLS port, when known. */
  tlsPort: number | null;
  /** Whether every channel uses TLS from the start. */
  tls: boolean;
}

function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError('BAD_URL', `${what} '${text}' is not a port number`);
  return n;
}

/**
 * Parses `spice://host[:port][?tls-port=N]` and `spice+tls://host[:port]` (default port 5900, as
 * remote-viewer uses). A password in the URL is refused: secrets never go on the command line.
 */
export function parseSpiceUrl(url: URL): SpiceTarget {
  if (url.password !== '' || url.username !== '') {
    throw new UsageError('SECRET_IN_URL', 'put the SPICE password in --password-file FILE or DESKREC_SPICE_PASSWORD, never in the URL');
  }
  if (url.hostname === '') throw new UsageError('BAD_URL', `'${url.href}' has no host (try spice://host:5900)`);
  if (url.pathname !== '' && url.pathname !== '/') throw new UsageError('BAD_URL', `unexpected path in '${url.href}'`);
  const tls = url.protocol === 'spice+tls:';
  let tlsPort: number | null = null;
  for (const [k, v] of url.searchParams) {
    if (k === 'tls-port' && !tls) tlsPort = parsePort(v, 'tls-port');
    else throw new UsageError('BAD_URL', `unknown URL parameter '${k}' in '${url.href}' (spice:// knows only tls-port)`);
  }
  const port = url.port === '' ? 5900 : parsePort(url.port, 'port');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, tlsPort: tls ? port : tlsPort, tls };
}

/** Options of a SPICE source beyond the target. */
export interface SpiceSourceOptions {
  password: string | null;
  preferCompression: number | null;
  tlsCa: Buffer | undefined;
  tlsInsecure: boolean;
  taps: TransportTap[];
  /** Connecting and the handshake (main channel to display channel linked) together, ms (default CONNECT_TIMEOUT_DEFAULT_S). */
  connectTimeoutMs?: number;
}

/** Records a SPICE server. */
export class SpiceSource implements FrameSource {
  readonly protocol = 'spice';
  readonly target: string;
  private session: SpiceSession | null = null;
  /** Every channel's transport, for the time since data last arrived on any of them. */
  private readonly transports: Transport[] = [];
  /** Frames handed to the consumer (a capture's END record stores it). */
  framesDelivered = 0;
  /**
   * Keys (scancodes, or keysyms through a US keymap), pointer and wheel over the inputs channel; clipboard
   * text and the display size (`resize`) through the guest agent, when the guest runs one
   * (capabilities().clipboard says why not; capabilities().resize whether its agent takes a size). Keys and
   * pointer are INPUT_NOT_READY until the inputs channel has linked; everything after the end.
   */
  readonly input: RemoteInput = new SpiceSourceInput(() => this.session);
  private readonly clipboardListeners: { listener: (text: string) => void; wanted: () => boolean }[] = [];

  constructor(private readonly where: SpiceTarget, private readonly opts: SpiceSourceOptions) {
    if (opts.password !== null && Buffer.byteLength(opts.password, 'utf8') > MAX_PASSWORD) {
      throw new AuthError('AUTH_PASSWORD_TOO_LONG', `SPICE passwords are at most ${MAX_PASSWORD} bytes`);
    }
    const host = where.host.includes(':') ? `[${where.host}]` : where.host;
    this.target = where.tls ? `spice+tls://${host}:${where.port}` : `spice://${host}:${where.port}${where.tlsPort === null ? '' : `?tls-port=${where.tlsPort}`}`;
  }

  addTap(tap: TransportTap): void {
    this.opts.taps.push(tap);
  }

  /** The guest's clipboard text, as its agent hands it over (a guest program copied), while `wanted()` (default: always). */
  onClipboard(listener: (text: string) => void, wanted: () => boolean = () => true): void {
    this.clipboardListeners.push({ listener, wanted });
  }

  credentials(): { password: boolean; username: boolean } {
    return { password: this.opts.password !== null, username: false };
  }

  describe(): Record<string, unknown> {
    return { ...(this.session?.describe() ?? {}), frames: this.framesDelivered };
  }

  now(): number | null {
    return this.transports[0]?.now() ?? null;
  }

  idleMs(): number | null {
    if (this.transports.length === 0) return null;
    // Any channel's bytes count: the main channel's pings while the display is still.
    let newest = -Infinity;
    for (const t of this.transports) newest = Math.max(newest, t.lastReceivedMs);
    const first = this.transports[0];
    return first === undefined ? null : first.now() - newest;
  }

  async run(consumer: FrameConsumer, run: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    const sessionStart = performance.now();
    const { host } = this.where;
    const timeoutMs = this.opts.connectTimeoutMs ?? connectTimeoutMs(null);
    const opener: ChannelOpener = async (req) => {
      const began = performance.now();
      const port = req.secure ? this.where.tlsPort : this.where.port;
      if (port === null) throw new ConnectError('SPICE_NEED_SECURED', `spice://${host} requires TLS: use spice+tls://host:tls-port`);
      const t = await connectTcp({ host, port }, { stream: req.stream, sessionStart, signal: run.signal, taps: this.opts.taps, timeoutMs });
      this.transports.push(t);
      for (const tap of this.opts.taps) tap.opened?.(req.stream, { channel: req.channelType, id: req.channelId, tls: req.secure }, Math.round(t.now() * 1000));
      if (req.secure) await secure(t, this.opts, host, timeoutMs - (performance.now() - began));
      return t;
    };
    const first = await opener({ stream: 0, channelType: 1, channelId: 0, secure: this.where.tls });
    return runLive(run, () => first.now(), consumer, (hooks) => {
      const session = new SpiceSession({
        password: this.opts.password,
        preferCompression: this.opts.preferCompression,
        secure: this.where.tls,
        canSecure: this.where.tlsPort !== null,
        open: opener,
        // A --raw capture holds the main channel's received bytes until they are read and zeroes the clipboard.
        marks: (stream) => inboundMarks(this.opts.taps, stream),
      }, {
        frame: (f) => { if (hooks.frame(f)) this.framesDelivered++; },
        ready: () => { hooks.ready(); },
        clipboard: (text) => { for (const l of this.clipboardListeners) if (l.wanted()) l.listener(text); },
        wantsClipboard: () => this.clipboardListeners.some((l) => l.wanted()),
        closed: (err) => { hooks.finish(err ?? new ConnectError('SERVER_CLOSED', `the server ${first.remote} closed the SPICE session`)); },
      });
      this.session = session;
      return { start: () => { session.start(first); }, close: () => { session.close(); } };
    }, { timeoutMs, error: () => handshakeTimeout('SPICE', first.remote, timeoutMs, this.session?.handshakeStage ?? null) });
  }
}

/**
 * Upgrades a channel's connection to TLS within `leftMs` (what is left of the connect timeout): a server
 * that accepts the connection and then never answers the TLS hello must not hold the session; the first
 * channel's upgrade comes before the session's own handshake deadline is armed.
 */
async function secure(t: Transport, opts: SpiceSourceOptions, host: string, leftMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(handshakeTimeout('SPICE', t.remote, opts.connectTimeoutMs ?? connectTimeoutMs(null), 'the TLS handshake')); }, Math.max(0, leftMs));
  });
  try {
    await Promise.race([t.startTls({ servername: host, ca: opts.tlsCa, insecure: opts.tlsInsecure, anonymous: false }), limit]);
  } catch (err) {
    t.close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** RemoteInput over the live SpiceSession's input path (src/protocol/spice/inputs-channel.ts). */
class SpiceSourceInput implements RemoteInput {
  constructor(private readonly session: () => SpiceSession | null) {}

  capabilities(): InputCapabilities {
    return this.session()?.input.capabilities()
      ?? { absolutePointer: false, relativePointer: false, keys: false, scancodes: false, clipboard: 'the SPICE session has not started', resize: false };
  }

  pointer(x: number, y: number, buttons: number): void {
    this.live().pointer(x, y, buttons);
  }

  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void {
    this.live().wheel(x, y, dx, dy, buttons);
  }

  key(k: KeyInput): void {
    this.live().key(k);
  }

  clipboard(text: string): void {
    this.live().clipboard(text);
  }

  resize(width: number, height: number): void {
    this.live().resize(width, height);
  }

  private live(): SpiceSession['input'] {
    const s = this.session();
    if (s === null) throw new InputError('INPUT_NOT_READY', 'the SPICE session has not started');
    return s.input;
  }
}
