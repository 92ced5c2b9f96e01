/**
 * The SPICE main channel (spice-common spice.proto MainChannel, spice-gtk `src/channel-main.c`): INIT gives
 * the session id every other channel links with; we then ask for the channel list (ATTACH_CHANNELS) and
 * report it. Mouse mode, multimedia time, name and UUID are kept for session.json; the agent's messages go to
 * the session's agent (agent.ts), with where their bodies lie in the channel's byte stream (for a capture).
 */
import { ProtocolError } from '../../errors';
import { ByteReader, capLength } from '../../wire/reader';
import { MSG_MAIN, MSGC_MAIN } from './constants';

/** What INIT says. */
export interface MainInit {
  sessionId: number;
  displayChannelsHint: number;
  supportedMouseModes: number;
  currentMouseMode: number;
  agentConnected: boolean;
  /** AGENT_DATA messages we may send the agent before the server gives more (AGENT_TOKEN). */
  agentTokens: number;
  multiMediaTime: number;
  ramHint: number;
}

/** What the main channel learned, for session.json. */
export interface MainInfo {
  init: MainInit | null;
  channels: { type: number; id: number }[] | null;
  name: string | null;
  uuid: string | null;
  mouseMode: number | null;
  multiMediaTime: number | null;
}

/** Events of the main channel. */
export interface MainEvents {
  /** INIT arrived: other channels may now link with `sessionId`. */
  init(init: MainInit): void;
  /** The server's channel list. */
  channels(list: { type: number; id: number }[]): void;
  /** The guest agent connected (`tokens` null: AGENT_CONNECTED, which carries none) or went away. */
  agentConnected?(tokens: number | null): void;
  agentDisconnected?(): void;
  /** AGENT_DATA, whose body starts at `offset` in the channel's received bytes. */
  agentData?(body: Uint8Array, offset: number): void;
  /** AGENT_TOKEN: the server takes `n` more AGENT_DATA messages. */
  agentTokens?(n: number): void;
}

/** Interprets main-channel messages; `send` writes a message on the channel. */
export class MainChannel {
  readonly info: MainInfo = { init: null, channels: null, name: null, uuid: null, mouseMode: null, multiMediaTime: null };

  constructor(private readonly send: (type: number, body?: Uint8Array) => void, private readonly events: MainEvents) {}

  /** Handles one message (type ≥ 101) whose body starts at `offset` in the channel's received bytes (0 when unknown). */
  message(type: number, body: Uint8Array, offset = 0): void {
    const r = new ByteReader(body, 0, `main message ${type}`);
    switch (type) {
      case MSG_MAIN.INIT: {
        const sessionId = r.u32(true);
        const displayChannelsHint = r.u32(true);
        const supportedMouseModes = r.u32(true);
        const currentMouseMode = r.u32(true);
        const agentConnected = r.u32(true) !== 0;
        const agentTokens = r.u32(true);
        const multiMediaTime = r.u32(true);
        const ramHint = r.u32(true);
        const init: MainInit = { sessionId, displayChannelsHint, supportedMouseModes, currentMouseMode, agentConnected, agentTokens, multiMediaTime, ramHint };
        this.info.init = init;
        this.events.init(init);
        this.send(MSGC_MAIN.ATTACH_CHANNELS);
        return;
      }
      case MSG_MAIN.CHANNELS_LIST: {
        const n = capLength(r.u32(true), 256, 'channel list');
        const list: { type: number; id: number }[] = [];
        for (let i = 0; i < n; i++) list.push({ type: r.u8(), id: r.u8() });
        this.info.channels = list;
        this.events.channels(list);
        return;
      }
      case MSG_MAIN.MOUSE_MODE:
        r.u16(true);
        this.info.mouseMode = r.u16(true);
        return;
      case MSG_MAIN.MULTI_MEDIA_TIME:
        this.info.multiMediaTime = r.u32(true);
        return;
      case MSG_MAIN.NAME: {
        const len = capLength(r.u32(true), 4096, 'VM name');
        this.info.name = Buffer.from(r.bytesView(Math.min(len, r.remaining))).toString('utf8').replace(/\0+$/, '');
        return;
      }
      case MSG_MAIN.UUID:
        this.info.uuid = Buffer.from(r.bytesView(16)).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
        return;
      case MSG_MAIN.AGENT_CONNECTED:
        this.events.agentConnected?.(null);
        return;
      case MSG_MAIN.AGENT_CONNECTED_TOKENS:
        this.events.agentConnected?.(r.u32(true));
        return;
      case MSG_MAIN.AGENT_DISCONNECTED:
        this.events.agentDisconnected?.();
        return;
      case MSG_MAIN.AGENT_DATA:
        this.events.agentData?.(body, offset);
        return;
      case MSG_MAIN.AGENT_TOKEN:
        this.events.agentTokens?.(r.u32(true));
        return;
      case MSG_MAIN.MIGRATE_BEGIN:
      case MSG_MAIN.MIGRATE_CANCEL:
      case MSG_MAIN.MIGRATE_SWITCH_HOST:
      case MSG_MAIN.MIGRATE_END:
        return;
      default:
        // Newer servers add main messages (seamless migration, …); none of them affects the display.
        if (type > 118) throw new ProtocolError('SPICE_UNKNOWN_MESSAGE', `unknown main-channel message ${type}`);
    }
  }
}
