/**
 * Secrets that arrive from the server. A capture tap sees every received chunk before the protocol client
 * has parsed it, so it cannot know by itself that some of those bytes are the remote clipboard (RFB
 * ServerCutText: text a person selected on the remote desktop). The client says so through these marks,
 * in the stream's own byte offsets (bytes received since the stream opened); the capture writer then holds
 * a stream's received bytes back until the client has looked at them, and records the secret ones as zeros
 * of the same length (unless `--raw-clipboard` keeps them), so a replay still parses the same messages.
 */
import type { TransportTap } from '../../transport/transport';

/** What a protocol client tells the capture about the bytes it received on one stream. */
export interface InboundMarks {
  /**
   * The client has parsed (or knows the meaning of) every received byte before `offset`: a capture may
   * write them. Offsets only grow; a smaller one than before is ignored.
   */
  examined(offset: number): void;
  /**
   * Received bytes `offset` .. `offset + length` (some may not have arrived yet) are the remote clipboard.
   * Saying it again for the same range is harmless. `continued`: the range continues the transfer named
   * before (a SPICE agent message in several AGENT_DATA pieces), so it is not counted as another one.
   */
  clipboard(offset: number, length: number, continued?: boolean): void;
}

/** A tap that takes inbound marks (the capture writer). */
export interface MarkingTap {
  /** Starts holding back `stream`'s received bytes until they are examined; returns that stream's marks. */
  inbound(stream: number): InboundMarks;
}

function isMarkingTap(tap: TransportTap): tap is TransportTap & MarkingTap {
  return typeof (tap as Partial<MarkingTap>).inbound === 'function';
}

/**
 * The marks for `stream` across every tap that takes them, or null when none does (no capture, or a
 * replay): a source calls this with its taps when it creates the protocol client of that stream.
 */
export function inboundMarks(taps: readonly TransportTap[], stream: number): InboundMarks | null {
  const marks = taps.filter(isMarkingTap).map((t) => t.inbound(stream));
  if (marks.length === 0) return null;
  if (marks.length === 1 && marks[0] !== undefined) return marks[0];
  return {
    examined: (offset) => { for (const m of marks) m.examined(offset); },
    clipboard: (offset, length, continued) => { for (const m of marks) m.clipboard(offset, length, continued); },
  };
}
