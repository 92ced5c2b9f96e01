/**
 * SPICE protocol 2.2 numbers (spice-protocol `spice/protocol.h`, `spice/enums.h`; message layouts in
 * spice-common `spice.proto`). Everything on a SPICE data channel is little-endian.
 */

/** Link magic "REDQ" as a little-endian u32. */
export const SPICE_MAGIC = 0x51444552;
/** Protocol version we speak. */
export const SPICE_VERSION_MAJOR = 2;
/** Minor version. */
export const SPICE_VERSION_MINOR = 2;
/** Size of the RSA-1024 public key in the link reply (DER SubjectPublicKeyInfo). */
export const TICKET_PUBKEY_BYTES = 162;
/** Encrypted ticket size (RSA-1024). */
export const TICKET_BYTES = 128;
/** Longest password SPICE accepts. */
export const MAX_PASSWORD = 60;

/** Channel types. */
export const CHANNEL = { MAIN: 1, DISPLAY: 2, INPUTS: 3, CURSOR: 4, PLAYBACK: 5, RECORD: 6 } as const;

/** Link results (SpiceLinkErr). */
export const LINK_ERR = {
  OK: 0, ERROR: 1, INVALID_MAGIC: 2, INVALID_DATA: 3, VERSION_MISMATCH: 4, NEED_SECURED: 5, NEED_UNSECURED: 6,
  PERMISSION_DENIED: 7, BAD_CONNECTION_ID: 8, CHANNEL_NOT_AVAILABLE: 9,
} as const;

/** Common capability bits. */
export const COMMON_CAP = { PROTOCOL_AUTH_SELECTION: 0, AUTH_SPICE: 1, AUTH_SASL: 2, MINI_HEADER: 3 } as const;
/** Display channel capability bits. */
export const DISPLAY_CAP = {
  SIZED_STREAM: 0, MONITORS_CONFIG: 1, COMPOSITE: 2, A8_SURFACE: 3, STREAM_REPORT: 4, LZ4_COMPRESSION: 5,
  PREF_COMPRESSION: 6, GL_SCANOUT: 7, MULTI_CODEC: 8, CODEC_MJPEG: 9,
} as const;

/** Messages every channel may receive (server → client). */
export const MSG = { MIGRATE: 1, MIGRATE_DATA: 2, SET_ACK: 3, PING: 4, WAIT_FOR_CHANNELS: 5, DISCONNECTING: 6, NOTIFY: 7, LIST: 8 } as const;
/** Messages every channel may send (client → server). */
export const MSGC = { ACK_SYNC: 1, ACK: 2, PONG: 3, MIGRATE_FLUSH_MARK: 4, MIGRATE_DATA: 5, DISCONNECTING: 6 } as const;

/** Main channel, server → client. */
export const MSG_MAIN = {
  MIGRATE_BEGIN: 101, MIGRATE_CANCEL: 102, INIT: 103, CHANNELS_LIST: 104, MOUSE_MODE: 105, MULTI_MEDIA_TIME: 106,
  AGENT_CONNECTED: 107, AGENT_DISCONNECTED: 108, AGENT_DATA: 109, AGENT_TOKEN: 110, MIGRATE_SWITCH_HOST: 111,
  MIGRATE_END: 112, NAME: 113, UUID: 114, AGENT_CONNECTED_TOKENS: 115,
} as const;
/** Main channel, client → server. */
export const MSGC_MAIN = { ATTACH_CHANNELS: 104, MOUSE_MODE_REQUEST: 105 } as const;

/** Display channel, client → server. */
export const MSGC_DISPLAY = { INIT: 101, STREAM_REPORT: 102, PREFERRED_COMPRESSION: 103 } as const;

/** Display channel, server → client (spice-protocol enums.h). */
export const MSG_DISPLAY = {
  MODE: 101, MARK: 102, RESET: 103, COPY_BITS: 104, INVAL_LIST: 105, INVAL_ALL_PIXMAPS: 106, INVAL_PALETTE: 107,
  INVAL_ALL_PALETTES: 108, STREAM_CREATE: 122, STREAM_DATA: 123, STREAM_CLIP: 124, STREAM_DESTROY: 125,
  STREAM_DESTROY_ALL: 126, DRAW_FILL: 302, DRAW_OPAQUE: 303, DRAW_COPY: 304, DRAW_BLEND: 305, DRAW_BLACKNESS: 306,
  DRAW_WHITENESS: 307, DRAW_INVERS: 308, DRAW_ROP3: 309, DRAW_STROKE: 310, DRAW_TEXT: 311, DRAW_TRANSPARENT: 312,
  DRAW_ALPHA_BLEND: 313, SURFACE_CREATE: 314, SURFACE_DESTROY: 315, STREAM_DATA_SIZED: 316, MONITORS_CONFIG: 317,
  DRAW_COMPOSITE: 318, STREAM_ACTIVATE_REPORT: 319, GL_SCANOUT_UNIX: 320, GL_DRAW: 321, QUALITY_INDICATOR: 322,
} as const;

/** Surface formats (SpiceSurfaceFmt). */
export const SURFACE_FMT = { A1: 1, A8: 8, RGB16_555: 16, RGB16_565: 80, XRGB32: 32, ARGB32: 96 } as const;

/** PREFERRED_COMPRESSION values (SpiceImageCompression), by their QEMU option names. */
export const IMAGE_COMPRESSION: Record<string, number> = { off: 1, auto_glz: 2, auto_lz: 3, quic: 4, glz: 5, lz: 6, lz4: 7 };

/** Names of message numbers, for session.json counts. */
export function messageName(table: Record<string, number>, type: number): string {
  const e = Object.entries(table).find(([, v]) => v === type);
  return e === undefined ? String(type) : e[0].toLowerCase();
}
