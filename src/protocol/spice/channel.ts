/**
 * One SPICE channel over its own transport: the link handshake (link.ts), then messages with the 6-byte mini
 * header (or the 18-byte full header if the server lacks MINI_HEADER), answering the base-channel messages
 * every channel gets — SET_ACK/ACK flow control and PING/PONG — at once, since a late answer makes the server
 * think the link is slow and switch to lossy compression (spice-server `server/red-channel-client.cpp`
 * measures the round trip with PING; spice-gtk `src/spice-channel.c`).
 */
import type { InboundMarks } from '../../capture/deskcap/marks';
import { ProtocolError } from '../../errors';
import type { Transport } from '../../transport/transport';
import { ByteQueue } from '../../wire/queue';
import { ByteReader, capLength } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';
import { COMMON_CAP, MSG, MSGC, TICKET_BYTES } from './constants';
import { authMechanism, buildLinkMess, encryptTicket, hasCap, LINK_HEADER_BYTES, linkError, OUR_COMMON_CAPS, parseLinkHeader, parseLinkReply } from './link';

/** Largest message body we accept (a full-screen uncompressed 32-bit 4K image is ~33 MB). */
const MAX_MESSAGE = 128 << 20;

/** What a channel's owner implements. */
export interface ChannelHandler {
  /** The link succeeded; the channel may send. */
  ready(serverChannelCaps: number[]): void;
  /**
   * A channel-specific message (type ≥ 101) arrived, with the arrival time of its last byte and where its
   * body starts in the channel's received bytes (the stream offsets of a capture's inbound marks).
   */
  message(type: number, body: Uint8Array, t_ms: number, offset: number): void;
  /**
   * The received bytes so far ended on a message boundary: everything that arrived together has been
   * handed over (the display channel's frame boundary). `t_ms` is the arrival time of the last message.
   */
  batchEnd?(t_ms: number): void;
  /** The server sent NOTIFY (text for logs). */
  notify?(text: string): void;
  /** The channel ended: cleanly (err null) or with an error. */
  closed(err: Error | null): void;
}

type State =
  | { k: 'link-header' }
  | { k: 'link-reply'; size: number }
  | { k: 'link-result' }
  | { k: 'messages' }
  | { k: 'closed' };

/** Options of one channel link. */
export interface ChannelOptions {
  connectionId: number;
  channelType: number;
  channelId: number;
  channelCaps: number[];
  password: string | null;
  /** Name for messages ("main", "display 0"). */
  name: string;
  /**
   * A capture's marks for this channel's received bytes (capture/deskcap/marks.ts): the channel says how far
   * it has read, its handler which bytes are the guest's clipboard. Only the main channel carries any.
   */
  inbound?: InboundMarks | null;
}

/** A linked SPICE channel. */
export class SpiceChannel {
  private readonly queue = new ByteQueue();
  private state: State = { k: 'link-header' };
  private mini = true;
  private ackWindow = 0;
  private ackCount = 0;
  private serial = 1;
  private ended = false;
  /** Bytes received since the channel's connection opened. */
  private received = 0;
  /** Messages received per type, for session.json and inspect. */
  readonly messageCounts: Record<number, number> = {};

  constructor(private readonly transport: Transport, private readonly opts: ChannelOptions, private readonly handler: ChannelHandler) {}

  /** Where the link is, for a handshake-timeout message: null once linked (or closed). */
  get linkStage(): string | null {
    switch (this.state.k) {
      case 'link-header': return `the ${this.opts.name} channel's link header (${this.queue.length} of ${LINK_HEADER_BYTES} bytes)`;
      case 'link-reply': return `the ${this.opts.name} channel's link reply (${this.queue.length} of ${this.state.size} bytes)`;
      case 'link-result': return `the ${this.opts.name} channel's link result`;
      default: return null;
    }
  }

  /** Sends the link message and starts reading. */
  start(): void {
    this.transport.attach({
      data: (chunk, t) => {
        this.received += chunk.length;
        this.queue.push(chunk, t);
        this.pump();
      },
      close: (err) => {
        this.releaseLinkBytes();
        if (err !== null) { this.end(err); return; }
        this.end(this.state.k === 'messages' ? null : new ProtocolError('SPICE_CLOSED', `${this.transport.remote} closed the ${this.opts.name} channel during the link`));
      },
    });
    const o = this.opts;
    this.transport.write(buildLinkMess(o.connectionId, o.channelType, o.channelId, OUR_COMMON_CAPS, o.channelCaps));
  }

  /**
   * Sends a channel message. `secret` (key events) makes taps record zeros in its place, as for
   * credentials, so typed passwords never reach a capture file.
   */
  send(type: number, body: Uint8Array = new Uint8Array(0), opts?: { secret?: boolean }): void {
    if (this.ended) return;
    const w = this.mini
      ? new ByteWriter(6 + body.length).u16(type, true).u32(body.length, true)
      : new ByteWriter(18 + body.length).u32(this.serial >>> 0, true).u32(Math.floor(this.serial / 2 ** 32), true).u16(type, true).u32(body.length, true).u32(0, true);
    this.serial++;
    this.transport.write(w.bytes(body).finish(), opts);
  }

  /** Closes the channel. */
  close(): void {
    this.end(null);
    this.transport.close();
  }

  private end(err: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.state = { k: 'closed' };
    this.handler.closed(err);
  }

  private pump(): void {
    try {
      let any = false;
      while (!this.ended && this.step()) any = true;
      if (any && !this.ended && this.state.k === 'messages' && this.queue.length === 0) this.handler.batchEnd?.(this.queue.lastTakenTime());
      this.opts.inbound?.examined(this.received - this.queue.length);
    } catch (err) {
      this.releaseLinkBytes();
      this.transport.close();
      this.end(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * On a close or an error during the link, a capture may write every byte received (the link carries no
   * secret a capture must hide, and a NEED_SECURED retry leaves this stream for another). Once messages
   * flow, the unread tail stays unreleased: it may hold part of an AGENT_DATA whose clipboard text was not
   * yet named; the capture leaves it out (its END record counts it as unparsed).
   */
  private releaseLinkBytes(): void {
    if (this.state.k !== 'messages' && this.state.k !== 'closed') this.opts.inbound?.examined(this.received);
  }

  private step(): boolean {
    const q = this.queue;
    const s = this.state;
    switch (s.k) {
      case 'link-header': {
        if (q.length < LINK_HEADER_BYTES) return false;
        const size = parseLinkHeader(q.take(LINK_HEADER_BYTES), this.transport.remote);
        this.state = { k: 'link-reply', size };
        return true;
      }
      case 'link-reply': {
        if (q.length < s.size) return false;
        const reply = parseLinkReply(q.take(s.size));
        if (reply.error !== 0) throw linkError(reply.error, this.transport.remote, this.opts.name, 'reply');
        this.mini = hasCap(reply.commonCaps, COMMON_CAP.MINI_HEADER);
        // The server expects an auth mechanism word iff we advertised auth selection (we do), whatever it says.
        this.transport.write(authMechanism());
        const ticket = encryptTicket(reply.pubKey, this.opts.password);
        if (ticket.length !== TICKET_BYTES) throw new ProtocolError('SPICE_BAD_KEY', `ticket of ${ticket.length} bytes`);
        this.transport.write(ticket, { secret: true });
        this.serverCaps = reply.channelCaps;
        this.state = { k: 'link-result' };
        return true;
      }
      case 'link-result': {
        if (q.length < 4) return false;
        const result = new ByteReader(q.take(4)).u32(true);
        if (result !== 0) throw linkError(result, this.transport.remote, this.opts.name, 'result');
        this.state = { k: 'messages' };
        this.handler.ready(this.serverCaps);
        return true;
      }
      case 'messages':
        return this.readMessage();
      case 'closed':
        return false;
    }
  }

  private serverCaps: number[] = [];

  private readMessage(): boolean {
    const q = this.queue;
    const headLen = this.mini ? 6 : 18;
    if (q.length < headLen) return false;
    const h = new ByteReader(q.view(), 0, 'SPICE message header');
    if (!this.mini) h.skip(8);
    const type = h.u16(true);
    const size = capLength(h.u32(true), MAX_MESSAGE, `SPICE message ${type}`);
    if (!this.mini && h.u32(true) !== 0) throw new ProtocolError('SPICE_SUB_LIST', 'SPICE sub-message lists are not supported (the server lacks the mini header)');
    if (q.length < headLen + size) return false;
    const offset = this.received - q.length + headLen;
    const body = q.take(headLen + size).subarray(headLen);
    const t = q.lastTakenTime();
    this.messageCounts[type] = (this.messageCounts[type] ?? 0) + 1;
    this.base(type, body, t, offset);
    // Flow control counts every message after SET_ACK (spice-gtk: one ACK per `window` messages).
    if (this.ackWindow > 0 && type !== MSG.SET_ACK && --this.ackCount <= 0) {
      this.send(MSGC.ACK);
      this.ackCount = this.ackWindow;
    }
    return true;
  }

  private base(type: number, body: Uint8Array, t: number, offset: number): void {
    const r = new ByteReader(body, 0, `SPICE message ${type}`);
    switch (type) {
      case MSG.SET_ACK: {
        const generation = r.u32(true);
        const window = r.u32(true);
        this.send(MSGC.ACK_SYNC, new ByteWriter(4).u32(generation, true).finish());
        this.ackWindow = window;
        this.ackCount = window;
        return;
      }
      case MSG.PING: {
        const id = r.u32(true);
        const ts = r.bytesView(8);
        this.send(MSGC.PONG, new ByteWriter(12).u32(id, true).bytes(ts).finish());
        return;
      }
      case MSG.NOTIFY: {
        r.skip(8 + 4 + 4 + 4);
        const len = capLength(r.u32(true), 4096, 'NOTIFY text');
        const text = Buffer.from(r.bytesView(Math.min(len, r.remaining))).toString('utf8').replace(/\0+$/, '');
        this.handler.notify?.(text);
        return;
      }
      case MSG.MIGRATE:
      case MSG.MIGRATE_DATA:
      case MSG.WAIT_FOR_CHANNELS:
      case MSG.DISCONNECTING:
        return;
      case MSG.LIST:
        throw new ProtocolError('SPICE_SUB_LIST', 'SPICE message lists are not supported');
      default:
        if (type < 101) throw new ProtocolError('SPICE_UNKNOWN_MESSAGE', `unknown SPICE base message ${type} on the ${this.opts.name} channel`);
        this.handler.message(type, body, t, offset);
    }
  }
}
