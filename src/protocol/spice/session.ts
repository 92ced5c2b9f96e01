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
import { CHANNEL, DISPLAY_CAP, messageName, MSG, MSG_MAIN } from './constants';
import { CursorChannel } from './cursor-channel';
import { DisplayState, glzWindowPixels } from './display/display-channel';
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
}

/** What the session tells its owner. */
export interface SpiceSessionEvents {
  /** A frame of the primary surface, with the pointer state (pixels valid during the call only). */
  frame(frame: Frame): void;
  /** The session ended: the server closed it (null) or it failed. */
  closed(err: Error | null): void;
  /** A channel was opened (for logs). */
  channelOpened?(name: string, stream: number): void;
}

/** Main channel capability: the server sends NAME and UUID (for session.json). */
const MAIN_CAP_NAME_AND_UUID = 1;


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
  /** Notices the server sent (NOTIFY), for session.json. */
  readonly notices: string[] = [];
  /** Input back to the guest (keys, pointer, wheel; the clipboard says why not): RemoteInput's methods. */
  readonly input: SpiceInput;

  constructor(private readonly opts: SpiceSessionOptions, private readonly events: SpiceSessionEvents) {
    this.input = new SpiceInput({
      sendMain: (type, body) => { this.mainChannel?.send(type, body); },
      primarySize: () => this.primarySize,
      pointerPosition: () => (this.cursor === null ? null : { x: this.cursor.state.x, y: this.cursor.state.y }),
    });
    this.main = new MainChannel((type, body) => { this.mainChannel?.send(type, body); }, {
      init: (init) => { this.init = init; this.input.mainInit(init); },
      channels: (list) => { this.openChannels(list); },
    });
  }

  /** Links the main channel over `transport` (stream 0). */
  start(transport: Transport): void {
    this.linkMain(transport);
  }

  private linkMain(transport: Transport): void {
    const ch = new SpiceChannel(transport, { connectionId: 0, channelType: CHANNEL.MAIN, channelId: 0, channelCaps: capWords([MAIN_CAP_NAME_AND_UUID]), password: this.opts.password, name: 'main' }, {
      ready: () => undefined,
      message: (type, body) => {
        this.main.message(type, body);
        this.input.mainMessage(type, body);
      },
      notify: (text) => { this.notices.push(text); },
      closed: (err) => {
        if (isNeedSecured(err) && this.opts.canSecure && this.init === null) {
          this.reopen({ channelType: CHANNEL.MAIN, channelId: 0 }, (t) => { this.linkMain(t); });
          return;
        }
        this.end(err);
      },
    });
    this.mainChannel = ch;
    this.channels.push(ch);
    ch.start();
  }

  private reopen(which: { channelType: number; channelId: number }, then: (t: Transport) => void): void {
    const stream = this.nextStream++;
    this.opts.open({ stream, ...which, secure: true }).then((t) => {
      if (this.ended) { t.close(); return; }
      this.events.channelOpened?.(`${channelName(which.channelType)} (TLS)`, stream);
      then(t);
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
    const caps = isDisplay
      ? capWords([DISPLAY_CAP.SIZED_STREAM, DISPLAY_CAP.MONITORS_CONFIG, DISPLAY_CAP.LZ4_COMPRESSION, DISPLAY_CAP.CODEC_MJPEG,
        ...(this.opts.preferCompression !== null ? [DISPLAY_CAP.PREF_COMPRESSION] : [])])
      : [];
    const name = channelName(channelType);
    let inputs: InputsChannel | null = null;
    const ch = new SpiceChannel(transport, { connectionId: init.sessionId, channelType, channelId, channelCaps: caps, password: this.opts.password, name }, {
      ready: (serverCaps) => {
        if (isDisplay) this.display?.start(((serverCaps[0] ?? 0) & (1 << DISPLAY_CAP.PREF_COMPRESSION)) !== 0);
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
      notices: this.notices,
    };
  }

  /** The primary surface's size, once known. */
  get primarySize(): { width: number; height: number } | null {
    return this.display?.primarySize ?? null;
  }
}

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
