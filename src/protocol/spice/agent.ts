/**
 * The SPICE guest agent, as a client speaks to it (spice-protocol `spice/vd_agent.h`; the agent is
 * spice-vdagent on Linux guests, the vdagent service on Windows): agent messages travel inside the main
 * channel's AGENT_DATA messages, in both directions, with their own 20-byte header (VDAgentMessage:
 * protocol, type, opaque, size) and at most VD_AGENT_MAX_DATA_SIZE bytes per AGENT_DATA. deskrec uses it for
 * one thing: the clipboard, text only, in both directions, "by demand" (the owner announces a grab with the
 * types it has; the other side asks for one type when it wants the data; the owner answers with it).
 *
 * What a guest's copy looks like on the wire: CLIPBOARD_GRAB [UTF8_TEXT, …] → we ask at once when someone
 * wants it (a viewer's page; a recording alone never asks: the text would only be thrown away) with
 * CLIPBOARD_REQUEST UTF8_TEXT → CLIPBOARD UTF8_TEXT + the text. A paste from our side: we send CLIPBOARD_GRAB [UTF8_TEXT] and keep the text; when
 * a guest program pastes, the agent sends CLIPBOARD_REQUEST UTF8_TEXT and we answer with CLIPBOARD.
 *
 * Capabilities (ANNOUNCE_CAPABILITIES, both ways; a capability counts when both announced it): we announce
 * CLIPBOARD_BY_DEMAND (without it agents do not offer their clipboard), MAX_CLIPBOARD (then we tell the
 * agent the largest text we take) and MONITORS_CONFIG (a viewer's "fit to window" asks the guest for a
 * display size: one monitor, `resize`; the agent applies it, on Linux through XRandR, and the new size
 * arrives as a new primary surface on the display channel). Not CLIPBOARD_SELECTION (its 4-byte selection
 * prefix would let a guest's PRIMARY selection through too; without it only the CLIPBOARD selection
 * travels), not GRAB_SERIAL, not file transfer.
 * A guest that announces GUEST_LINEEND_CRLF (Windows) gets CRLF line ends and its text comes back with LF.
 *
 * Flow control (spice-server `reds.cpp`): each AGENT_DATA we send spends one of the tokens the server gave
 * (INIT's agent_tokens, AGENT_CONNECTED_TOKENS) and returns with AGENT_TOKEN; each AGENT_DATA the server
 * sends spends one of ours (AGENT_START's count), which we give back with AGENT_TOKEN as we take them.
 *
 * The guest is not trusted: a message over MAX_MESSAGE bytes is skipped (its bytes still read, and named to
 * a capture when it is clipboard); a bad header turns the agent off for this connection (the reason is what
 * the clipboard capability then says, and every later AGENT_DATA byte counts as clipboard for a capture);
 * neither ever ends the session.
 *
 * A message we send goes out whole once its first chunk has: spice-server (`agent-msg-filter.c`) counts
 * the bytes it still expects for it, across an agent disconnect too, and would take what we send next as
 * its data. So a disconnect, a restart of the agent or a full queue drops only messages not yet begun.
 *
 * Secrets: the clipboard is as secret as typed keys. The text we send goes out marked secret (a capture
 * records zeros); the guest's text is named to the capture as clipboard bytes (`clipboardBytes`), which a
 * `--raw` capture records as zeros unless `--raw-clipboard`. Only the payload of CLIPBOARD messages is
 * named, chunk by chunk, so the AGENT_DATA framing stays intact and a replay parses the same messages.
 */
import { InputError, ProtocolError } from '../../errors';
import { ByteReader } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';

/** Main channel: client → server agent messages (spice-protocol enums.h). */
export const MSGC_MAIN_AGENT = { START: 106, DATA: 107, TOKEN: 108 } as const;

/** VDAgentMessage.protocol. */
const VD_AGENT_PROTOCOL = 1;
/** Bytes of VDAgentMessage before its data. */
const HEADER_BYTES = 20;
/** Largest AGENT_DATA body, the agent header included in the first one (VD_AGENT_MAX_DATA_SIZE). */
export const MAX_CHUNK = 2048;

/** Agent message types (VD_AGENT_*). */
export const VD_AGENT = {
  MOUSE_STATE: 1, MONITORS_CONFIG: 2, REPLY: 3, CLIPBOARD: 4, DISPLAY_CONFIG: 5, ANNOUNCE_CAPABILITIES: 6,
  CLIPBOARD_GRAB: 7, CLIPBOARD_REQUEST: 8, CLIPBOARD_RELEASE: 9, FILE_XFER_START: 10, FILE_XFER_STATUS: 11,
  FILE_XFER_DATA: 12, CLIENT_DISCONNECTED: 13, MAX_CLIPBOARD: 14, AUDIO_VOLUME_SYNC: 15, GRAPHICS_DEVICE_INFO: 16,
} as const;

/** Capability bits (VD_AGENT_CAP_*). */
export const VD_AGENT_CAP = {
  MOUSE_STATE: 0, MONITORS_CONFIG: 1, REPLY: 2, CLIPBOARD: 3, DISPLAY_CONFIG: 4, CLIPBOARD_BY_DEMAND: 5,
  CLIPBOARD_SELECTION: 6, SPARSE_MONITORS_CONFIG: 7, GUEST_LINEEND_LF: 8, GUEST_LINEEND_CRLF: 9, MAX_CLIPBOARD: 10,
} as const;

/** Largest display side we ask a guest for (QXL's own limit is far below; a guest clamps what it cannot show). */
export const MAX_MONITOR_SIDE = 16384;

/** Clipboard data types (VD_AGENT_CLIPBOARD_*). */
export const VD_CLIPBOARD = { NONE: 0, UTF8_TEXT: 1 } as const;

/** AGENT_DATA messages the server may send before we give tokens back (spice-server's own window is 10). */
const OUR_TOKENS = 10;
/** Largest clipboard text either way, bytes of UTF-8 (as MAX_CLIPBOARD tells the agent). */
export const MAX_CLIPBOARD_BYTES = 1024 * 1024;
/** Largest agent message we take (a clipboard message of MAX_CLIPBOARD_BYTES and its type). */
const MAX_MESSAGE = MAX_CLIPBOARD_BYTES + 64;
/**
 * Chunks of messages not yet started that we keep while the server gives no tokens (one largest clipboard
 * message and a few more); a message that would go beyond is not queued (a clipboard answer becomes NONE).
 */
const MAX_QUEUED_CHUNKS = Math.ceil((HEADER_BYTES + 8 + MAX_CLIPBOARD_BYTES) / MAX_CHUNK) + 16;
/** Notices about the agent kept per session (a guest can provoke them again and again). */
const MAX_NOTICES = 20;

/** Why the clipboard cannot be used, in words (the input capabilities' `clipboard`). */
export const AGENT_PROBLEM = {
  NONE: 'no SPICE guest agent',
  STARTING: 'the SPICE guest agent has not announced its capabilities yet',
  NO_CLIPBOARD: 'the SPICE guest agent offers no clipboard',
} as const;

/** What the agent needs from its session. */
export interface AgentHost {
  /** Sends a main-channel message; `secret` makes captures record zeros in its place. */
  sendMain(type: number, body: Uint8Array, opts?: { secret?: boolean }): void;
  /** The guest's clipboard text (after a guest program copied). */
  clipboard(text: string): void;
  /** Whether anyone wants the guest's text now: it is asked for (CLIPBOARD_REQUEST) only then. */
  wantsClipboard(): boolean;
  /**
   * Received main-channel bytes `offset … offset + length` are clipboard text (for a capture); `continued`:
   * a further piece of the message named before.
   */
  clipboardBytes?(offset: number, length: number, continued: boolean): void;
  /** Something about the agent worth a log line (it was turned off, a message was refused). */
  notice(text: string): void;
}

type State =
  | { k: 'absent' }
  /** Started (AGENT_START sent); its capabilities not yet seen. */
  | { k: 'starting' }
  | { k: 'ready'; caps: number[] }
  | { k: 'off'; why: string };

/** The header of the agent message being received, and what of it arrived. */
interface Incoming {
  type: number;
  size: number;
  got: number;
  /** Its data, or null when it is not kept (a type we ignore). */
  data: Uint8Array | null;
}

/** The guest agent of one SPICE session (see the module comment). */
export class SpiceAgent {
  private state: State = { k: 'absent' };
  /** AGENT_DATA messages we may still send. */
  private serverTokens = 0;
  /** AGENT_DATA messages received since we last gave tokens back. */
  private taken = 0;
  /** Messages waiting for tokens, as chunks; `sent` chunks of the first may have gone out already. */
  private queue: { chunks: Uint8Array[]; sent: number; secret: boolean }[] = [];
  private readonly head = new Uint8Array(HEADER_BYTES);
  private headFill = 0;
  private incoming: Incoming | null = null;
  /** The text we hold the guest's clipboard with (UTF-8, line ends as the guest wants), or null. */
  private owned: Uint8Array | null = null;
  /** Counts for session.json. */
  readonly counts = { fromGuest: 0, toGuest: 0, requests: 0, resizes: 0 };

  constructor(private readonly host: AgentHost) {}

  /** The main channel's INIT: whether an agent runs, and the tokens we may spend (kept even without one). */
  init(connected: boolean, tokens: number): void {
    this.serverTokens = tokens;
    if (connected) this.connected(null);
  }

  /** AGENT_CONNECTED (`tokens` null: keep what we have) or AGENT_CONNECTED_TOKENS. */
  connected(tokens: number | null): void {
    this.reset();
    if (tokens !== null) this.serverTokens = tokens;
    this.state = { k: 'starting' };
    this.host.sendMain(MSGC_MAIN_AGENT.START, new ByteWriter(4).u32(OUR_TOKENS, true).finish());
    this.send(VD_AGENT.ANNOUNCE_CAPABILITIES, announce(true));
  }

  /** AGENT_DISCONNECTED: the guest's agent went away (the guest rebooted, the agent was stopped). */
  disconnected(): void {
    // The tokens stay (spice-gtk keeps them too): a plain AGENT_CONNECTED later brings none.
    this.reset();
    this.state = { k: 'absent' };
  }

  /** AGENT_TOKEN: the server takes `n` more AGENT_DATA messages. */
  tokens(n: number): void {
    this.serverTokens += n;
    this.flush();
  }

  /**
   * AGENT_DATA: `body` arrived at main-channel stream offset `offset`. Agent messages are read as one byte
   * stream across AGENT_DATA messages (a message may span several; spice-gtk reads them the same way).
   */
  data(body: Uint8Array, offset: number): void {
    if (++this.taken >= OUR_TOKENS / 2) {
      this.host.sendMain(MSGC_MAIN_AGENT.TOKEN, new ByteWriter(4).u32(this.taken, true).finish());
      this.taken = 0;
    }
    if (this.isOff()) {
      // After a bad header the stream's message boundaries are unknown: all of it counts as clipboard.
      this.host.clipboardBytes?.(offset, body.length, true);
      return;
    }
    let i = 0;
    while (i < body.length) {
      const m = this.incoming;
      if (m === null) {
        const n = Math.min(HEADER_BYTES - this.headFill, body.length - i);
        this.head.set(body.subarray(i, i + n), this.headFill);
        this.headFill += n;
        i += n;
        if (this.headFill === HEADER_BYTES) this.beginMessage();
        if (this.isOff()) {
          if (i < body.length) this.host.clipboardBytes?.(offset + i, body.length - i, true);
          return;
        }
        continue;
      }
      const n = Math.min(m.size - m.got, body.length - i);
      // Clipboard text is named to a capture whatever becomes of it (even refused or ignored).
      if (m.type === VD_AGENT.CLIPBOARD) this.host.clipboardBytes?.(offset + i, n, m.got > 0);
      m.data?.set(body.subarray(i, i + n), m.got);
      m.got += n;
      i += n;
      if (m.got === m.size) this.endMessage(m);
      if (this.isOff()) {
        if (i < body.length) this.host.clipboardBytes?.(offset + i, body.length - i, true);
        return;
      }
    }
  }

  /** Why the clipboard cannot be used now, or null when it can. */
  problem(): string | null {
    switch (this.state.k) {
      case 'absent': return AGENT_PROBLEM.NONE;
      case 'starting': return AGENT_PROBLEM.STARTING;
      case 'off': return this.state.why;
      case 'ready': return hasCap(this.state.caps, VD_AGENT_CAP.CLIPBOARD_BY_DEMAND) ? null : AGENT_PROBLEM.NO_CLIPBOARD;
    }
  }

  /** The guest's agent takes a display size (MONITORS_CONFIG). */
  canResize(): boolean {
    return this.state.k === 'ready' && hasCap(this.state.caps, VD_AGENT_CAP.MONITORS_CONFIG);
  }

  /**
   * Asks the guest for one monitor of `width` x `height` (VDAgentMonitorsConfig, depth 32, at 0,0). The
   * guest answers, if at all, with a new primary surface; sizes it cannot show it clamps or ignores.
   */
  resize(width: number, height: number): void {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > MAX_MONITOR_SIDE || height > MAX_MONITOR_SIDE) {
      throw new InputError('INPUT_BAD_VALUE', `a display size must be 1..${MAX_MONITOR_SIDE} in each direction, got ${width}x${height}`);
    }
    if (!this.canResize()) {
      throw new InputError('INPUT_UNSUPPORTED', `the SPICE guest cannot be resized from here: ${this.problem() ?? 'its agent takes no monitor configuration'}`);
    }
    // VDAgentMonConfig has height before width.
    const body = new ByteWriter(8 + 20).u32(1, true).u32(0, true).u32(height, true).u32(width, true).u32(32, true).s32(0, true).s32(0, true).finish();
    if (!this.send(VD_AGENT.MONITORS_CONFIG, body)) throw new InputError('INPUT_NOT_READY', 'the SPICE server takes no agent data for now');
    this.counts.resizes++;
  }

  /** Puts `text` on the guest's clipboard (a grab now; the text when a guest program asks). */
  setClipboard(text: string): void {
    const why = this.problem();
    if (why !== null) throw new InputError('INPUT_UNSUPPORTED', `SPICE clipboard: ${why}`);
    const crlf = this.state.k === 'ready' && hasCap(this.state.caps, VD_AGENT_CAP.GUEST_LINEEND_CRLF);
    // Line ends as the guest wants them: CRLF for Windows guests, LF for the others (text pasted from a
    // Windows browser may come with CRLF).
    const bytes = Buffer.from(text.replace(/\r?\n/g, crlf ? '\r\n' : '\n'), 'utf8');
    if (bytes.length > MAX_CLIPBOARD_BYTES) {
      throw new InputError('INPUT_BAD_VALUE', `clipboard text of ${bytes.length} bytes (at most ${MAX_CLIPBOARD_BYTES} as UTF-8)`);
    }
    if (!this.send(VD_AGENT.CLIPBOARD_GRAB, new ByteWriter(4).u32(VD_CLIPBOARD.UTF8_TEXT, true).finish())) {
      throw new InputError('INPUT_NOT_READY', 'SPICE clipboard: the server takes no agent data for now');
    }
    this.owned = bytes;
  }

  /** What session.json says of the agent. */
  describe(): Record<string, unknown> {
    const s = this.state;
    return {
      state: s.k, ...(s.k === 'off' ? { why: s.why } : {}), ...(s.k === 'ready' ? { capabilities: s.caps } : {}),
      clipboard: { fromGuest: this.counts.fromGuest, toGuest: this.counts.toGuest, requests: this.counts.requests },
      resizes: this.counts.resizes,
    };
  }

  /** A method, not an inline test, so TypeScript does not narrow `state` across the calls that change it. */
  private isOff(): boolean {
    return this.state.k === 'off';
  }

  private reset(): void {
    this.dropUnstarted();
    this.headFill = 0;
    this.incoming = null;
    this.owned = null;
    this.taken = 0;
  }

  private beginMessage(): void {
    const r = new ByteReader(this.head, 0, 'agent message header');
    const protocol = r.u32(true);
    const type = r.u32(true);
    r.skip(8); // opaque
    const size = r.u32(true);
    this.headFill = 0;
    if (protocol !== VD_AGENT_PROTOCOL) { this.turnOff(`the guest agent speaks protocol ${protocol}, not ${VD_AGENT_PROTOCOL}`); return; }
    const tooLarge = size > MAX_MESSAGE;
    if (tooLarge) this.notice(`a guest agent message of ${size} bytes (type ${type}) was skipped: at most ${MAX_MESSAGE} are taken`);
    const keep = !tooLarge && (type === VD_AGENT.ANNOUNCE_CAPABILITIES || type === VD_AGENT.CLIPBOARD_GRAB
      || type === VD_AGENT.CLIPBOARD_REQUEST || type === VD_AGENT.CLIPBOARD || type === VD_AGENT.CLIPBOARD_RELEASE);
    const m: Incoming = { type, size, got: 0, data: keep ? new Uint8Array(size) : null };
    this.incoming = m;
    if (size === 0) this.endMessage(m);
  }

  private endMessage(m: Incoming): void {
    this.incoming = null;
    if (m.data === null) return;
    try {
      this.handle(m.type, m.data);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.turnOff(err.message);
    }
  }

  private handle(type: number, data: Uint8Array): void {
    const r = new ByteReader(data, 0, `agent message ${type}`);
    switch (type) {
      case VD_AGENT.ANNOUNCE_CAPABILITIES: {
        const request = r.u32(true);
        const caps: number[] = [];
        while (r.remaining >= 4) caps.push(r.u32(true));
        this.state = { k: 'ready', caps };
        if (request !== 0) this.send(VD_AGENT.ANNOUNCE_CAPABILITIES, announce(false));
        if (hasCap(caps, VD_AGENT_CAP.MAX_CLIPBOARD)) this.send(VD_AGENT.MAX_CLIPBOARD, new ByteWriter(4).s32(MAX_CLIPBOARD_BYTES, true).finish());
        this.flush();
        return;
      }
      case VD_AGENT.CLIPBOARD_GRAB: {
        // A guest program copied: our text (if any) is no longer the guest's clipboard. Ask for text.
        this.owned = null;
        const types: number[] = [];
        while (r.remaining >= 4) types.push(r.u32(true));
        if (types.includes(VD_CLIPBOARD.UTF8_TEXT) && this.host.wantsClipboard()) {
          this.counts.requests++;
          this.send(VD_AGENT.CLIPBOARD_REQUEST, new ByteWriter(4).u32(VD_CLIPBOARD.UTF8_TEXT, true).finish());
        }
        return;
      }
      case VD_AGENT.CLIPBOARD_REQUEST: {
        const want = r.u32(true);
        const text = want === VD_CLIPBOARD.UTF8_TEXT ? this.owned : null;
        if (text !== null && this.send(VD_AGENT.CLIPBOARD, new ByteWriter(4 + text.length).u32(VD_CLIPBOARD.UTF8_TEXT, true).bytes(text).finish(), true)) {
          this.counts.toGuest++;
          return;
        }
        // No data of that type (or no room for it): an answer of type NONE, so the guest program asking does
        // not wait forever.
        this.send(VD_AGENT.CLIPBOARD, new ByteWriter(4).u32(VD_CLIPBOARD.NONE, true).finish(), true, true);
        return;
      }
      case VD_AGENT.CLIPBOARD_RELEASE:
        // The guest's clipboard is empty now: our text is no longer needed there.
        this.owned = null;
        return;
      case VD_AGENT.CLIPBOARD: {
        const kind = r.u32(true);
        if (kind !== VD_CLIPBOARD.UTF8_TEXT) return;
        let text = Buffer.from(r.bytesView(r.remaining)).toString('utf8').replace(/\0+$/, '');
        if (this.state.k === 'ready' && hasCap(this.state.caps, VD_AGENT_CAP.GUEST_LINEEND_CRLF)) text = text.replace(/\r\n/g, '\n');
        this.counts.fromGuest++;
        try {
          this.host.clipboard(text);
        } catch (err) {
          // A listener's failure is the listener's: the session goes on.
          this.notice(`a clipboard listener failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        return;
      }
      default:
    }
  }

  private turnOff(why: string): void {
    this.state = { k: 'off', why };
    this.owned = null;
    this.dropUnstarted();
    this.notice(`SPICE guest agent turned off for this session: ${why}`);
  }

  private notices = 0;

  private notice(text: string): void {
    if (++this.notices <= MAX_NOTICES) this.host.notice(text);
  }

  /** Drops the messages not yet begun; one partly sent goes on (the module comment says why). */
  private dropUnstarted(): void {
    this.queue = this.queue.filter((m) => m.sent > 0);
  }

  /**
   * Sends an agent message in AGENT_DATA chunks, as tokens allow (the rest waits for AGENT_TOKEN). Returns
   * false, sending nothing, when the messages waiting leave no room for it (unless `always`: tiny answers).
   */
  private send(type: number, data: Uint8Array, secret = false, always = false): boolean {
    const msg = new ByteWriter(HEADER_BYTES + data.length)
      .u32(VD_AGENT_PROTOCOL, true).u32(type, true).u64(0n, true).u32(data.length, true).bytes(data).finish();
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < msg.length; i += MAX_CHUNK) chunks.push(msg.subarray(i, Math.min(msg.length, i + MAX_CHUNK)));
    const waiting = this.queue.reduce((n, m) => n + m.chunks.length - m.sent, 0);
    if (!always && waiting + chunks.length > MAX_QUEUED_CHUNKS) {
      this.notice(`the SPICE server takes no agent data for now (${waiting} chunks wait): agent message ${type} not sent`);
      return false;
    }
    this.queue.push({ chunks, sent: 0, secret });
    this.flush();
    return true;
  }

  private flush(): void {
    while (this.serverTokens > 0) {
      const m = this.queue[0];
      if (m === undefined) return;
      const body = m.chunks[m.sent++];
      if (m.sent >= m.chunks.length) this.queue.shift();
      if (body === undefined) continue;
      this.serverTokens--;
      this.host.sendMain(MSGC_MAIN_AGENT.DATA, body, m.secret ? { secret: true } : undefined);
    }
  }
}

/** Our ANNOUNCE_CAPABILITIES body. */
function announce(request: boolean): Uint8Array {
  const caps = (1 << VD_AGENT_CAP.MONITORS_CONFIG) | (1 << VD_AGENT_CAP.CLIPBOARD_BY_DEMAND) | (1 << VD_AGENT_CAP.MAX_CLIPBOARD);
  return new ByteWriter(8).u32(request ? 1 : 0, true).u32(caps, true).finish();
}

function hasCap(caps: readonly number[], bit: number): boolean {
  return (((caps[bit >> 5] ?? 0) >>> (bit & 31)) & 1) === 1;
}
