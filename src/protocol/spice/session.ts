/**
 * One SPICE session: the main channel, then the display channel 0, the cursor channel and the inputs
 * channel, each on its own transport (spice-protocol `spice/enums.h` channel types; spice-gtk's
 * `spice-session.c` links them the same way). The session decides which channels to open and in which
 * order; its owner decides how a channel's transport is made — a live source connects TCP (and TLS), a
 * capture replay hands back the recorded stream — so both run exactly this code. Streams are numbered in
 * the order the session opens them (main 0, display 1, cursor 2, inputs next, then any TLS retries),
 * which is what a capture file records. The inputs channel is opened last so that captures made before
 * it existed keep their numbers; it only links (nothing is sent on it, nor the mouse-mode request, until
 * the first input call), and a replay that never feeds it leaves it waiting harmlessly: nothing waits for
 * it, and its failure never ends a recording.
 */
import type { CursorState } from '../../capture/cursor';
import type { Frame } from '../../capture/surface';
import { DeskrecError, ProtocolError } from '../../errors';
import type { Transport } from '../../transport/transport';
import { SpiceChannel } from './channel';
import { capWords } from './link';
import { CHANNEL, DISPLAY_CAP, IMAGE_COMPRESSION, messageName, MSG, MSG_MAIN } from './constants';
import { CursorChannel } from './cursor-channel';
import { DisplayState, glzWindowPixels } from './display/display-channel';
import { SpiceAgent } from './agent';
import type { InboundMarks } from '../../capture/deskcap/marks';
import { MainChannel, type MainInit } from './main-channel';
import { InputsChannel, SpiceInput } from './inputs-channel';

/** How the owner makes a channel's transport. */
export type ChannelOpener = (req: { stream: number; channelType: number; channelId: number; secure: boolean }) => Promise<Transport>;

/** Options of a session. */
export interface SpiceSessionOptions {
  password: string | null;
  /** SpiceImageCompression to ask for, or null to let the server choose (the default). */
  preferCompression: number | null;
  /** Whether the first connection is TLS (spice+tls://). */
  secure: boolean;
  /** Whether a channel refused with NEED_SECURED may be retried over TLS (a TLS port is known). */
  canSecure: boolean;
  open: ChannelOpener;
  maxPixels?: number;
  /**
   * A capture's inbound marks for a stream (capture/deskcap/marks.ts), asked for the main channel's stream,
   * whose AGENT_DATA may carry the guest's clipboard; absent (or null) without a capture.
   */
  marks?: (stream: number) => InboundMarks | null;
}

/** What the session tells its owner. */
export interface SpiceSessionEvents {
  /** A frame of the primary surface, with the pointer state (pixels valid during the call only). */
  frame(frame: Frame): void;
  /** The session ended: the server closed it (null) or it failed. */
  closed(err: Error | null): void;
  /** A channel was opened (for logs). */
  channelOpened?(name: string, stream: number): void;
  /** The display channel has linked: the handshake is over (what follows is the session). */
  ready?(): void;
  /** The guest's clipboard text, through its agent (a guest program copied). */
  clipboard?(text: string): void;
  /** Whether the guest's text is wanted now (asked for only then); without it, never. */
  wantsClipboard?(): boolean;
}

/** Main channel capability: the server sends NAME and UUID (for session.json). */
const MAIN_CAP_NAME_AND_UUID = 1;
/** Main channel capability: an agent that connects later comes with its tokens (AGENT_CONNECTED_TOKENS). */
const MAIN_CAP_AGENT_CONNECTED_TOKENS = 2;

/**
 * The display-channel capabilities we announce: what spice-gtk announces (`channel-display.c`
 * spice_display_channel_set_capabilities), less what would oblige us to do what we do not. Each one:
 * - SIZED_STREAM: yes — STREAM_DATA_SIZED (a frame with its own destination) is drawn.
 * - MONITORS_CONFIG: yes — the layout is kept for session.json.
 * - COMPOSITE: yes — spice-server passes it (with SIZED_STREAM, MONITORS_CONFIG, A8_SURFACE; the common
 *   subset of all clients) to the guest (`display-channel.cpp` guest_set_client_capabilities), and Xorg's
 *   qxl driver then sends DRAW_COMPOSITE for every Render op it accelerates (xf86-video-qxl `qxl_uxa.c`
 *   qxl_check_composite: CLEAR…ADD, SATURATE, MULTIPLY…HSL_LUMINOSITY, with component alpha, affine
 *   transforms, nearest/bilinear filters), all of which display/combine.ts and canvas.ts draw.
 * - A8_SURFACE: yes — off-screen surfaces of format A8 are coverage-only images (display-channel.ts
 *   OffscreenSurface; fills take the colour's low byte). That driver creates them once COMPOSITE is there
 *   (qxl_has_a8_surfaces tests the COMPOSITE bit), so the two go together.
 * - STREAM_REPORT: no — it obliges the client to answer STREAM_ACTIVATE_REPORT with periodic
 *   STREAM_REPORT messages (spice-server `video-stream.cpp` dcc_create_stream, `dcc.cpp`
 *   dcc_handle_stream_report), which a recorder has no use for; without it the server adapts the MJPEG
 *   bitrate on its own estimates, as for spice-gtk with adaptive streaming off.
 * - LZ4_COMPRESSION: yes — LZ4 images are decoded (without it the server sends LZ instead, `dcc.cpp`).
 * - PREF_COMPRESSION: no — the server's capability, not the client's: `--prefer-compression` is sent when
 *   the server announces it (DisplayState.start); spice-gtk does not announce it either.
 * - GL_SCANOUT: no — GL_SCANOUT_UNIX passes a dmabuf file descriptor over a local Unix socket; deskrec
 *   connects over TCP and draws in software.
 * - MULTI_CODEC: yes, with CODEC_MJPEG only — the server then creates streams only in codecs the client
 *   announces (`video-stream.cpp` dcc_create_video_encoder), i.e. MJPEG, which is what a client without
 *   MULTI_CODEC gets anyway; sending a preferred-codec list (PREF_VIDEO_CODEC_TYPE, a server capability)
 *   is optional.
 * - CODEC_MJPEG: yes — MJPEG stream frames are decoded. CODEC_VP8, CODEC_H264, CODEC_VP9, CODEC_H265: no
 *   decoder, not announced.
 */
const DISPLAY_CAPS: readonly number[] = [
  DISPLAY_CAP.SIZED_STREAM, DISPLAY_CAP.MONITORS_CONFIG, DISPLAY_CAP.COMPOSITE, DISPLAY_CAP.A8_SURFACE,
  DISPLAY_CAP.LZ4_COMPRESSION, DISPLAY_CAP.MULTI_CODEC, DISPLAY_CAP.CODEC_MJPEG,
];


/** A running SPICE session. */
export class SpiceSession {
  private readonly channels: SpiceChannel[] = [];
  private nextStream = 1;
  private init: MainInit | null = null;
  private display: DisplayState | null = null;
  private cursor: CursorChannel | null = null;
  private cursorChanged = false;
  private ended = false;
  private readonly main: MainChannel;
  private mainChannel: SpiceChannel | null = null;
  /** The guest agent (the clipboard), over the main channel. */
  private readonly agent: SpiceAgent;
  /** The capture's marks for the main channel's stream, or null. */
  private mainMarks: InboundMarks | null = null;
  /** Notices the server sent (NOTIFY), for session.json. */
  readonly notices: string[] = [];
  /** Input back to the guest (keys, pointer, wheel; the clipboard says why not): RemoteInput's methods. */
  readonly input: SpiceInput;

  constructor(private readonly opts: SpiceSessionOptions, private readonly events: SpiceSessionEvents) {
    this.agent = new SpiceAgent({
      sendMain: (type, body, o) => { this.mainChannel?.send(type, body, o); },
      clipboard: (text) => { this.events.clipboard?.(text); },
      wantsClipboard: () => this.events.wantsClipboard?.() ?? false,
      clipboardBytes: (offset, length, continued) => { this.mainMarks?.clipboard(offset, length, continued); },
      notice: (text) => { this.notices.push(text); },
    });
    this.input = new SpiceInput({
      sendMain: (type, body) => { this.mainChannel?.send(type, body); },
      primarySize: () => this.primarySize,
      pointerPosition: () => (this.cursor === null ? null : { x: this.cursor.state.x, y: this.cursor.state.y }),
      clipboardProblem: () => this.agent.problem(),
      setClipboard: (text) => { this.agent.setClipboard(text); },
      canResize: () => this.agent.canResize(),
      resize: (width, height) => { this.agent.resize(width, height); },
    });
    this.main = new MainChannel((type, body) => { this.mainChannel?.send(type, body); }, {
      init: (init) => { this.init = init; this.input.mainInit(init); this.agent.init(init.agentConnected, init.agentTokens); },
      channels: (list) => { this.openChannels(list); },
      agentConnected: (tokens) => { this.agent.connected(tokens); },
      agentDisconnected: () => { this.agent.disconnected(); },
      agentData: (body, offset) => { this.agent.data(body, offset); },
      agentTokens: (n) => { this.agent.tokens(n); },
    });
  }

  /** Links the main channel over `transport` (stream 0). */
  start(transport: Transport): void {
    this.linkMain(transport, 0);
  }

  private linkMain(transport: Transport, stream: number): void {
    this.mainMarks = this.opts.marks?.(stream) ?? null;
    const caps = capWords([MAIN_CAP_NAME_AND_UUID, MAIN_CAP_AGENT_CONNECTED_TOKENS]);
    const ch = new SpiceChannel(transport, { connectionId: 0, channelType: CHANNEL.MAIN, channelId: 0, channelCaps: caps, password: this.opts.password, name: 'main', inbound: this.mainMarks }, {
      ready: () => undefined,
      message: (type, body, _t, offset) => {
        this.main.message(type, body, offset);
        this.input.mainMessage(type, body);
      },
      notify: (text) => { this.notices.push(text); },
      closed: (err) => {
        if (isNeedSecured(err) && this.opts.canSecure && this.init === null) {
          this.reopen({ channelType: CHANNEL.MAIN, channelId: 0 }, (t, stream) => { this.linkMain(t, stream); });
          return;
        }
        this.end(err);
      },
    });
    this.mainChannel = ch;
    this.channels.push(ch);
    ch.start();
  }

  private reopen(which: { channelType: number; channelId: number }, then: (t: Transport, stream: number) => void): void {
    const stream = this.nextStream++;
    this.opts.open({ stream, ...which, secure: true }).then((t) => {
      if (this.ended) { t.close(); return; }
      this.events.channelOpened?.(`${channelName(which.channelType)} (TLS)`, stream);
      then(t, stream);
    }, (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      if (which.channelType === CHANNEL.INPUTS) { this.inputsFailed(e); return; }
      this.end(e);
    });
  }

  private openChannels(list: { type: number; id: number }[]): void {
    if (this.init === null) throw new ProtocolError('SPICE_NO_INIT', 'the server listed channels before INIT');
    if (this.display !== null) return; // a repeated list changes nothing
    if (!list.some((c) => c.type === CHANNEL.DISPLAY && c.id === 0)) {
      this.end(new ProtocolError('SPICE_NO_DISPLAY', 'the SPICE server offers no display channel'));
      return;
    }
    const init = this.init;
    this.display = new DisplayState((type, body) => { this.displayChannel?.send(type, body); }, {
      frame: (f) => {
        if (this.cursor !== null) f.cursor = copyCursor(this.cursor.state);
        this.cursorChanged = false;
        this.events.frame(f);
      },
      failed: (err) => { this.end(err); },
    }, { glzWindowPixels: glzWindowPixels(init.ramHint), preferCompression: this.opts.preferCompression, maxPixels: this.opts.maxPixels });
    this.openChannel(CHANNEL.DISPLAY, 0, this.opts.secure);
    if (list.some((c) => c.type === CHANNEL.CURSOR && c.id === 0)) {
      this.cursor = new CursorChannel();
      this.openChannel(CHANNEL.CURSOR, 0, this.opts.secure);
    }
    // Last, so that main, display and cursor keep the stream numbers older captures have.
    if (list.some((c) => c.type === CHANNEL.INPUTS && c.id === 0)) this.openChannel(CHANNEL.INPUTS, 0, this.opts.secure);
    else this.input.unavailable('the SPICE server offers no inputs channel');
  }

  private displayChannel: SpiceChannel | null = null;

  private openChannel(channelType: number, channelId: number, secure: boolean): void {
    const stream = this.nextStream++;
    this.opts.open({ stream, channelType, channelId, secure }).then((t) => {
      if (this.ended) { t.close(); return; }
      this.events.channelOpened?.(channelName(channelType), stream);
      this.linkChannel(t, channelType, channelId, secure);
    }, (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      // Input is an extra: a recording goes on without it.
      if (channelType === CHANNEL.INPUTS) { this.inputsFailed(e); return; }
      this.end(e);
    });
  }

  private inputsFailed(err: Error): void {
    this.notices.push(`inputs channel: ${err.message}`);
    this.input.unavailable(`the SPICE inputs channel failed: ${err.message}`);
  }

  private linkChannel(transport: Transport, channelType: number, channelId: number, secure: boolean): void {
    const init = this.init;
    if (init === null) return;
    const isDisplay = channelType === CHANNEL.DISPLAY;
    const isInputs = channelType === CHANNEL.INPUTS;
    // Inputs: no capability; keys go as KEY_DOWN/KEY_UP, so KEY_SCANCODE is not announced.
    const caps = isDisplay ? capWords(DISPLAY_CAPS) : [];
    const name = channelName(channelType);
    let inputs: InputsChannel | null = null;
    const ch = new SpiceChannel(transport, { connectionId: init.sessionId, channelType, channelId, channelCaps: caps, password: this.opts.password, name }, {
      ready: (serverCaps) => {
        if (isDisplay) {
          this.display?.start(((serverCaps[0] ?? 0) & (1 << DISPLAY_CAP.PREF_COMPRESSION)) !== 0);
          this.events.ready?.();
        }
        if (inputs !== null) this.input.linked(inputs);
      },
      message: (type, body, t) => {
        if (isDisplay) { this.display?.message(type, body, t); return; }
        if (inputs !== null) { inputs.message(type, body); return; }
        if (this.cursor?.message(type, body) === true) this.cursorChanged = true;
      },
      batchEnd: (t) => {
        if (isDisplay) this.display?.batchEnd(t);
        // Inputs-channel traffic never makes a frame: frames depend on display and cursor bytes only.
        else if (!isInputs && this.cursorChanged) this.display?.batchEnd(t, true);
      },
      notify: (text) => { this.notices.push(text); },
      closed: (err) => {
        if (isNeedSecured(err) && !secure && this.opts.canSecure) {
          this.reopen({ channelType, channelId }, (t) => { this.linkChannel(t, channelType, channelId, true); });
          return;
        }
        if (isInputs) {
          if (err === null) this.input.unavailable('the SPICE server closed the inputs channel');
          else this.inputsFailed(err);
          return;
        }
        // A cursor channel may go away on its own; the recording goes on without the pointer.
        if (!isDisplay && err === null) return;
        this.end(err ?? null);
      },
    });
    if (isInputs) inputs = new InputsChannel((type, body, o) => { ch.send(type, body, o); });
    if (isDisplay) this.displayChannel = ch;
    this.channels.push(ch);
    ch.start();
  }

  /**
   * What the handshake (main channel link, INIT, the channel list, the display channel's link) is waiting
   * for, for a handshake-timeout message; null once the display channel has linked.
   */
  get handshakeStage(): string | null {
    const main = this.mainChannel;
    if (main === null) return 'the main channel';
    const mainStage = main.linkStage;
    if (mainStage !== null) return mainStage;
    if (this.init === null) return 'the main channel\'s INIT';
    if (this.display === null) return 'the channel list';
    const display = this.displayChannel;
    if (display === null) return 'the display channel\'s connection';
    return display.linkStage;
  }

  /** Resolves once every message received so far has been applied. */
  whenIdle(): Promise<void> {
    return this.display?.whenIdle() ?? Promise.resolve();
  }

  /** Closes every channel. */
  close(): void {
    this.ended = true;
    this.input.end();
    for (const ch of this.channels) ch.close();
  }

  private end(err: Error | null): void {
    if (this.ended) return;
    this.close();
    this.events.closed(err);
  }

  /** Session details for session.json (no secrets). */
  describe(): Record<string, unknown> {
    const d = this.display;
    const mainCounts: Record<string, number> = {};
    const mc = this.mainChannel?.messageCounts ?? {};
    for (const [k, v] of Object.entries(mc)) mainCounts[Number(k) < 101 ? messageName(MSG, Number(k)) : messageName(MSG_MAIN, Number(k))] = v;
    return {
      server: {
        name: this.main.info.name,
        uuid: this.main.info.uuid,
        channels: this.main.info.channels,
        mouseMode: this.main.info.mouseMode,
      },
      monitors: d?.monitors ?? null,
      frames: d?.frames ?? 0,
      lossy: d?.lossy ?? false,
      messages: { main: mainCounts, display: { ...(d?.counts.messages ?? {}) } },
      images: { ...(d?.counts.images ?? {}) },
      unsupported: { ...(d?.counts.unsupported ?? {}) },
      cursor: this.cursor === null ? null : structuredClone(this.cursor.counts),
      agent: this.agent.describe(),
      compression: this.compressionReport(),
      notices: [...this.notices, ...this.compressionNotice()],
    };
  }

  /**
   * The image compression asked for (`--prefer-compression`) beside the image types that arrived: a server
   * may ignore the request (no DISPLAY_CAP_PREF_COMPRESSION), be built without the codec (spice-server
   * `reds.cpp`: no USE_LZ4 → auto_glz), or fall back per image (`dcc.cpp` get_compression_for_bitmap: LZ4
   * only for RGB bitmaps, LZ otherwise; images LZ cannot take go uncompressed; QUIC may become JPEG).
   */
  private compressionReport(): { requested: string | null; sent: boolean; received: Record<string, number> } {
    const d = this.display;
    return { requested: compressionName(this.opts.preferCompression), sent: d?.preferenceSent ?? false, received: d?.compressedImages ?? {} };
  }

  /** A notice when images arrived but none of them in the compression asked for. */
  private compressionNotice(): string[] {
    const { requested, sent, received } = this.compressionReport();
    if (requested === null) return [];
    const total = Object.values(received).reduce((a, b) => a + b, 0);
    const wanted = COMPRESSION_TYPES[requested] ?? [];
    if (total === 0 || wanted.some((t) => (received[t] ?? 0) > 0)) return [];
    const got = Object.entries(received).map(([k, v]) => `${k} ${v}`).join(', ');
    return [`asked for ${requested} images${sent ? '' : ' (the server does not take a preferred compression)'}, but the server sent none: ${got}`];
  }

  /** The primary surface's size, once known. */
  get primarySize(): { width: number; height: number } | null {
    return this.display?.primarySize ?? null;
  }
}

/** The `--prefer-compression` name of a SpiceImageCompression value. */
function compressionName(value: number | null): string | null {
  if (value === null) return null;
  return Object.entries(IMAGE_COMPRESSION).find(([, v]) => v === value)?.[0] ?? `compression_${value}`;
}

/**
 * Image types (session.json names) each compression request can produce, per spice-server `dcc.cpp`
 * (dcc_compress_image: QUIC may be sent as JPEG when lossy compression is allowed; GLZ may be wrapped in
 * zlib; the auto modes pick QUIC for photographic images and (G)LZ otherwise).
 */
const COMPRESSION_TYPES: Record<string, readonly string[]> = {
  off: ['bitmap'],
  quic: ['quic', 'jpeg', 'jpeg_alpha'],
  lz: ['lz_rgb', 'lz_plt'],
  glz: ['glz_rgb', 'zlib_glz_rgb'],
  lz4: ['lz4'],
  auto_lz: ['quic', 'jpeg', 'jpeg_alpha', 'lz_rgb', 'lz_plt'],
  auto_glz: ['quic', 'jpeg', 'jpeg_alpha', 'glz_rgb', 'zlib_glz_rgb', 'lz_rgb', 'lz_plt'],
};

function isNeedSecured(err: Error | null): boolean {
  return err instanceof DeskrecError && err.code === 'SPICE_NEED_SECURED';
}

function channelName(type: number): string {
  return type === CHANNEL.MAIN ? 'main' : type === CHANNEL.DISPLAY ? 'display' : type === CHANNEL.CURSOR ? 'cursor'
    : type === CHANNEL.INPUTS ? 'inputs' : `channel ${type}`;
}

function copyCursor(c: CursorState): CursorState {
  return { shape: c.shape, x: c.x, y: c.y };
}
