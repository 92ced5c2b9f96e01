/**
 * The wire numbers the RFB server side uses (rfbproto §7.5 client messages, §7.6 server messages, §7.7
 * encodings, §7.8 pseudo-encodings). Kept here rather than imported from encodings/index.ts, whose import
 * would load every client decoder into the viewer.
 */

/** Client-to-server message types (rfbproto §7.5 and the extensions noVNC may send). */
export const ClientMsg = {
  SetPixelFormat: 0,
  SetEncodings: 2,
  FramebufferUpdateRequest: 3,
  KeyEvent: 4,
  PointerEvent: 5,
  ClientCutText: 6,
  EnableContinuousUpdates: 150,
  ClientFence: 248,
  SetDesktopSize: 251,
  Qemu: 255,
} as const;

/** Server-to-client message types (rfbproto §7.6). */
export const ServerMsg = {
  FramebufferUpdate: 0,
  Bell: 2,
  ServerCutText: 3,
} as const;

/** The encodings and pseudo-encodings the server sends or reads from SetEncodings. */
export const Enc = {
  Raw: 0,
  CopyRect: 1,
  ZRLE: 16,
  DesktopSize: -223,
  Cursor: -239,
  QemuExtendedKeyEvent: -258,
  ExtendedDesktopSize: -308,
  CursorWithAlpha: -314,
  /** VMware's cursor (rfbproto "VMware Cursor Pseudo-encoding"); its alpha type is the one noVNC 1.7 reads as RGBA. */
  VMwareCursor: 0x574d5664,
  /** Compression level L (0..9) is CompressLevel0 + L. */
  CompressLevel0: -256,
  CompressLevel9: -247,
} as const;

/** RFB security type None (rfbproto §7.2.1). */
export const SECURITY_NONE = 1;
