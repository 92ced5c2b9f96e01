/**
 * deskrec as a library: open a source, run a session (record it, watch its frames, take snapshots, send
 * input back), show it in browsers (`Viewer`), and read what it wrote. The command line (`deskrec record |
 * replay | inspect | view`) is a thin face on exactly these calls; so will the daemon be.
 *
 *   import { openSource, Session } from 'deskrec';
 *   const session = new Session(openSource('vnc://127.0.0.1:1', { passwordFile: 'vm1.pw' }),
 *     { record: { dir: 'out', format: 'mp4' }, log: console.error });
 *   await session.start();
 *   session.watch({ onFrame: (frame) => console.log(frame.t_ms, frame.damage.length) });
 *   session.input.key({ keysym: 0x61, down: true });
 *   session.input.key({ keysym: 0x61, down: false });
 *   const { end, recording } = await session.stop();
 */
export { Session, type SessionEvents, type SessionOptions, type SessionResult, type SessionState, type SessionStats } from './session/session';
export { FORMATS, CURSOR_MODES, LIMITS, RECORD_DEFAULTS, resolveRecordOptions, type RecordOptions } from './session/options';
export type { Snapshot } from './session/picture';
export type { FrameWatcher, Subscription } from './session/watchers';
export { openCapture, openSource, PASSWORD_ENV, SPICE_COMPRESSIONS, type OpenedCapture, type SourceOptions } from './sources/open';
export { readPassword, type PasswordSource } from './sources/credentials';
export { BUTTON, type FrameConsumer, type FrameSource, type InputCapabilities, type KeyInput, type RemoteInput, type SourceEnd } from './sources/source';
export { Viewer, type ViewerOptions, type ViewerRecording, type ViewerState } from './viewer/viewer';
export { cookieName, newToken } from './viewer/auth';
export { inspectCapture, formatInspection, type Inspection } from './sources/inspect';
export type { ReplayProgress } from './sources/replay';
export type { Frame } from './capture/surface';
export type { Rect } from './capture/rect';
export type { CursorShape, CursorState } from './capture/cursor';
export type { RecordingStats, SessionJson } from './recorder/recording';
export type { SegmentRecord } from './recorder/outputs';
export type { LiveUnit } from './recorder/live';
export type { RateControl } from './recorder/encoders/backend';
export {
  AuthError, ConnectError, DeskrecError, EncoderError, InputError, ProtocolError, SinkError, UsageError, describeError,
} from './errors';
