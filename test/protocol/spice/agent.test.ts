/**
 * The SPICE guest-agent protocol (src/protocol/spice/agent.ts) against a scripted server on replay
 * transports: AGENT_START and the capability announcement when the agent is there (INIT or later), the
 * clipboard by demand in both directions (asked for only when someone wants it), UTF-8 and CRLF guests,
 * messages split across AGENT_DATA, token flow control both ways (a message begun is always finished, as
 * spice-server's agent filter requires), secrets (our text marked secret, the guest's named to a capture
 * exactly, an unread tail never released), and a malformed agent turned off without ending the session.
 * Layouts: spice-protocol `spice/vd_agent.h`, `spice/enums.h`.
 */
import type { InboundMarks } from '../../../src/capture/deskcap/marks';
import { InputError } from '../../../src/errors';
import { AGENT_PROBLEM, MAX_CHUNK, MAX_CLIPBOARD_BYTES, MSGC_MAIN_AGENT, VD_AGENT, VD_AGENT_CAP, VD_CLIPBOARD } from '../../../src/protocol/spice/agent';
import { CHANNEL, MSG_MAIN } from '../../../src/protocol/spice/constants';
import { SpiceSession } from '../../../src/protocol/spice/session';
import { ReplayTransport } from '../../../src/transport/replay';
import { ByteWriter } from '../../../src/wire/writer';
import { thrown } from '../../helpers/thrown';
import { linked, msg } from './scripted';

interface Harness {
  session: SpiceSession;
  main: ReplayTransport;
  clipboard: string[];
  wants: boolean;
  closed: (Error | null)[];
  /** What the capture's marks were told: examined offsets and clipboard ranges. */
  marks: { examined: number; clipboard: { offset: number; length: number; continued: boolean }[] };
  /** Every byte fed to the main stream, to read the marked ranges back. */
  fed: number[];
}

function mainInit(agent: boolean, tokens: number): Uint8Array {
  return msg(MSG_MAIN.INIT, new ByteWriter().u32(0xabcd, true).u32(1, true).u32(3, true).u32(1, true)
    .u32(agent ? 1 : 0, true).u32(tokens, true).u32(0, true).u32(64 << 20, true).finish());
}

function harness(opts: { agent?: boolean; tokens?: number } = {}): Harness {
  const h: Harness = { session: undefined as unknown as SpiceSession, main: new ReplayTransport(0, 'scripted'), clipboard: [], wants: true, closed: [], marks: { examined: 0, clipboard: [] }, fed: [] };
  const marks: InboundMarks = {
    examined: (o) => { h.marks.examined = Math.max(h.marks.examined, o); },
    clipboard: (offset, length, continued) => { h.marks.clipboard.push({ offset, length, continued: continued === true }); },
  };
  h.session = new SpiceSession({
    password: null, preferCompression: null, secure: false, canSecure: false,
    // No display channel is linked: the agent lives on the main channel alone.
    open: () => new Promise(() => undefined),
    marks: (stream) => (stream === 0 ? marks : null),
  }, {
    frame: () => undefined, closed: (err) => { h.closed.push(err); },
    clipboard: (t) => { h.clipboard.push(t); }, wantsClipboard: () => h.wants,
  });
  h.session.start(h.main);
  feed(h, Buffer.concat([linked(), mainInit(opts.agent ?? true, opts.tokens ?? 10), msg(MSG_MAIN.CHANNELS_LIST, new ByteWriter().u32(1, true).u8(CHANNEL.DISPLAY).u8(0).finish())]));
  return h;
}

function feed(h: Harness, bytes: Uint8Array): void {
  for (const b of bytes) h.fed.push(b);
  h.main.feed(bytes, 1);
}

/** One agent message (VDAgentMessage header + data). */
function agentMessage(type: number, data: Uint8Array, protocol = 1): Uint8Array {
  return new ByteWriter().u32(protocol, true).u32(type, true).u64(0n, true).u32(data.length, true).bytes(data).finish();
}

/** Agent messages as the server sends them: AGENT_DATA messages of at most `chunk` bytes of the agent stream. */
function agentData(bytes: Uint8Array, chunk = MAX_CHUNK): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(msg(MSG_MAIN.AGENT_DATA, bytes.subarray(i, i + chunk)));
  return Buffer.concat(parts);
}

function caps(bits: number[], request: boolean): Uint8Array {
  let word = 0;
  for (const b of bits) word |= 1 << b;
  return new ByteWriter().u32(request ? 1 : 0, true).u32(word >>> 0, true).finish();
}

const u32 = (v: number): Uint8Array => new ByteWriter().u32(v, true).finish();
const typed = (kind: number, data: Uint8Array): Uint8Array => new ByteWriter().u32(kind, true).bytes(data).finish();

/** Main-channel messages we wrote after the link (link message, auth mechanism, ticket). */
function sent(h: Harness): { type: number; body: Uint8Array; secret: boolean }[] {
  return h.main.written.map((w, i) => ({ w, i })).slice(3).map(({ w, i }) => ({
    type: (w[0] ?? 0) | ((w[1] ?? 0) << 8), body: w.subarray(6), secret: h.main.secretWrites.has(i),
  }));
}

/** The agent messages in our AGENT_DATA writes, reassembled: type and data, and whether any chunk was secret. */
function agentSent(h: Harness): { type: number; data: Uint8Array; secret: boolean }[] {
  const chunks = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA);
  const out: { type: number; data: Uint8Array; secret: boolean }[] = [];
  let buf = Buffer.alloc(0);
  let secret = false;
  for (const c of chunks) {
    buf = Buffer.concat([buf, c.body]);
    secret ||= c.secret;
    while (buf.length >= 20 && buf.length >= 20 + buf.readUInt32LE(16)) {
      const size = buf.readUInt32LE(16);
      expect(buf.readUInt32LE(0)).toBe(1);
      out.push({ type: buf.readUInt32LE(4), data: new Uint8Array(buf.subarray(20, 20 + size)), secret });
      buf = buf.subarray(20 + size);
      secret = false;
    }
  }
  return out;
}

/** The guest's agent announces BY_DEMAND (and `more`) and asks for ours. */
function guestReady(h: Harness, more: number[] = []): void {
  feed(h, agentData(agentMessage(VD_AGENT.ANNOUNCE_CAPABILITIES, caps([VD_AGENT_CAP.CLIPBOARD_BY_DEMAND, VD_AGENT_CAP.GUEST_LINEEND_LF, ...more], true))));
}

const inputError = (f: () => void): InputError => thrown(InputError, f);

/** What we announce: monitor configuration, the clipboard by demand, our clipboard limit. */
const OUR_CAPS = [VD_AGENT_CAP.MONITORS_CONFIG, VD_AGENT_CAP.CLIPBOARD_BY_DEMAND, VD_AGENT_CAP.MAX_CLIPBOARD];

describe('SPICE guest agent', () => {
  test('no agent: nothing is started, and the clipboard says why', () => {
    const h = harness({ agent: false });
    expect(sent(h).map((m) => m.type)).toEqual([104]);
    expect(h.session.input.capabilities().clipboard).toBe(AGENT_PROBLEM.NONE);
    const e = inputError(() => { h.session.input.clipboard('x'); });
    expect(e.code).toBe('INPUT_UNSUPPORTED');
    expect(e.message).toContain(AGENT_PROBLEM.NONE);
  });

  test('an agent at INIT: AGENT_START with our tokens, our capabilities; theirs answered, MAX_CLIPBOARD told', () => {
    const h = harness();
    const start = sent(h).find((m) => m.type === MSGC_MAIN_AGENT.START);
    expect(start === undefined ? null : Buffer.from(start.body).readUInt32LE(0)).toBe(10);
    expect(agentSent(h).map((m) => ({ type: m.type, data: Array.from(m.data) }))).toEqual([
      { type: VD_AGENT.ANNOUNCE_CAPABILITIES, data: Array.from(caps(OUR_CAPS, true)) },
    ]);
    expect(h.session.input.capabilities().clipboard).toBe(AGENT_PROBLEM.STARTING);
    guestReady(h, [VD_AGENT_CAP.MAX_CLIPBOARD]);
    expect(h.session.input.capabilities().clipboard).toBeNull();
    expect(agentSent(h).slice(1).map((m) => ({ type: m.type, data: Array.from(m.data) }))).toEqual([
      { type: VD_AGENT.ANNOUNCE_CAPABILITIES, data: Array.from(caps(OUR_CAPS, false)) },
      { type: VD_AGENT.MAX_CLIPBOARD, data: Array.from(u32(MAX_CLIPBOARD_BYTES)) },
    ]);
  });

  test('an agent without CLIPBOARD_BY_DEMAND offers no clipboard', () => {
    const h = harness();
    feed(h, agentData(agentMessage(VD_AGENT.ANNOUNCE_CAPABILITIES, caps([VD_AGENT_CAP.MONITORS_CONFIG], false))));
    expect(h.session.input.capabilities().clipboard).toBe(AGENT_PROBLEM.NO_CLIPBOARD);
  });

  test('a guest copy: asked for only when wanted; UTF-8 text split across AGENT_DATA arrives whole and is named to the capture exactly', () => {
    const h = harness();
    guestReady(h);
    h.wants = false;
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_GRAB, u32(VD_CLIPBOARD.UTF8_TEXT))));
    expect(agentSent(h).filter((m) => m.type === VD_AGENT.CLIPBOARD_REQUEST)).toEqual([]);
    h.wants = true;
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_GRAB, new ByteWriter().u32(VD_CLIPBOARD.UTF8_TEXT, true).u32(2, true).finish())));
    expect(agentSent(h).filter((m) => m.type === VD_AGENT.CLIPBOARD_REQUEST).map((m) => Array.from(m.data))).toEqual([Array.from(u32(VD_CLIPBOARD.UTF8_TEXT))]);

    const text = 'grüße, 世界\nzweite Zeile';
    const before = h.fed.length;
    // 7-byte AGENT_DATA pieces: the header and the text both cut across messages.
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from(text, 'utf8'))), 7));
    expect(h.clipboard).toEqual([text]);
    // The marked bytes are exactly the CLIPBOARD message's data (type and text), nothing of the framing.
    const marked = Buffer.from(h.marks.clipboard.flatMap((r) => h.fed.slice(r.offset, r.offset + r.length)));
    expect(marked).toEqual(Buffer.from(typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from(text, 'utf8'))));
    expect(h.marks.clipboard.every((r) => r.offset >= before)).toBe(true);
    // One transfer: the first piece starts it, the others continue it.
    expect(h.marks.clipboard.map((r) => r.continued)).toEqual([false, ...Array<boolean>(h.marks.clipboard.length - 1).fill(true)]);
    expect(h.marks.clipboard.length).toBeGreaterThan(3);
    // Everything fed has been examined (a capture may write it).
    expect(h.marks.examined).toBe(h.fed.length);
  });

  test('our paste: a grab, then the text when the guest asks, marked secret; other types get NONE', () => {
    const h = harness();
    guestReady(h);
    h.session.input.clipboard('one\ntwo');
    expect(agentSent(h).at(-1)).toEqual({ type: VD_AGENT.CLIPBOARD_GRAB, data: u32(VD_CLIPBOARD.UTF8_TEXT), secret: false });
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(VD_CLIPBOARD.UTF8_TEXT))));
    expect(agentSent(h).at(-1)).toEqual({ type: VD_AGENT.CLIPBOARD, data: typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from('one\ntwo')), secret: true });
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(2))));
    expect(agentSent(h).at(-1)).toEqual({ type: VD_AGENT.CLIPBOARD, data: u32(VD_CLIPBOARD.NONE), secret: true });
    // The guest copied something of its own: our text is no longer its clipboard.
    h.wants = false;
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_GRAB, u32(VD_CLIPBOARD.UTF8_TEXT))));
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(VD_CLIPBOARD.UTF8_TEXT))));
    expect(agentSent(h).at(-1)).toEqual({ type: VD_AGENT.CLIPBOARD, data: u32(VD_CLIPBOARD.NONE), secret: true });
  });

  test('a CRLF guest (Windows) gets CRLF line ends, and its text comes back with LF', () => {
    const h = harness();
    guestReady(h, [VD_AGENT_CAP.GUEST_LINEEND_CRLF]);
    h.session.input.clipboard('a\nb\r\nc');
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(VD_CLIPBOARD.UTF8_TEXT))));
    expect(Buffer.from(agentSent(h).at(-1)?.data ?? []).subarray(4).toString()).toBe('a\r\nb\r\nc');
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_GRAB, u32(VD_CLIPBOARD.UTF8_TEXT))));
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from('x\r\ny\0')))));
    expect(h.clipboard).toEqual(['x\ny']);
  });

  test('tokens: our AGENT_DATA waits for the server\'s tokens; 2048-byte chunks; theirs given back as we read', () => {
    const h = harness({ tokens: 1 });
    // The announcement took the one token.
    guestReady(h);
    const before = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA).length;
    const text = 'x'.repeat(5000);
    h.session.input.clipboard(text);
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(VD_CLIPBOARD.UTF8_TEXT))));
    expect(sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA).length).toBe(before);
    feed(h, msg(MSG_MAIN.AGENT_TOKEN, u32(100)));
    const chunks = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA).slice(before);
    expect(chunks.every((c) => c.body.length <= MAX_CHUNK)).toBe(true);
    expect(agentSent(h).slice(-2).map((m) => m.type)).toEqual([VD_AGENT.CLIPBOARD_GRAB, VD_AGENT.CLIPBOARD]);
    expect(Buffer.from(agentSent(h).at(-1)?.data ?? []).subarray(4).toString()).toBe(text);
    // Two AGENT_DATA read so far (the announcement, the request): no tokens back yet; five: five back.
    const back = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.TOKEN).map((m) => Buffer.from(m.body).readUInt32LE(0));
    expect(back.reduce((a, b) => a + b, 0)).toBe(0);
    for (let i = 0; i < 3; i++) feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_RELEASE, new Uint8Array(0))));
    const back2 = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.TOKEN).map((m) => Buffer.from(m.body).readUInt32LE(0));
    expect(back2).toEqual([5]);
  });

  test('too much text is INPUT_BAD_VALUE', () => {
    const h = harness();
    guestReady(h);
    expect(inputError(() => { h.session.input.clipboard('é'.repeat(MAX_CLIPBOARD_BYTES)); }).code).toBe('INPUT_BAD_VALUE');
  });

  test('a malformed agent is turned off, the session goes on; what follows counts as clipboard for a capture', () => {
    const h = harness();
    guestReady(h);
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_GRAB, u32(1), 2)));
    expect(h.session.input.capabilities().clipboard).toMatch(/protocol 2/);
    expect(h.closed).toEqual([]);
    const at = h.fed.length;
    feed(h, agentData(Buffer.from('whatever follows')));
    const last = h.marks.clipboard.at(-1);
    expect(last).toEqual({ offset: at + 6, length: 'whatever follows'.length, continued: true });
  });

  test('a message larger than any we take is skipped, still named to the capture, and the agent goes on', () => {
    const h = harness();
    guestReady(h);
    const big = MAX_CLIPBOARD_BYTES + 1000;
    const marked = h.marks.clipboard.length;
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.alloc(big - 4, 0x41)))));
    expect(h.clipboard).toEqual([]);
    expect(h.marks.clipboard.slice(marked).reduce((n, r) => n + r.length, 0)).toBe(big);
    expect(h.session.input.capabilities().clipboard).toBeNull();
    // The next message is read as usual.
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from('small')))));
    expect(h.clipboard).toEqual(['small']);
    expect(h.closed).toEqual([]);
  });

  test('a message partly sent is finished first, across an agent restart; only messages not begun are dropped', () => {
    const h = harness({ tokens: 2 });
    guestReady(h); // the announcement and our answer to theirs: both tokens spent
    h.session.input.clipboard('y'.repeat(5000));
    feed(h, agentData(agentMessage(VD_AGENT.CLIPBOARD_REQUEST, u32(VD_CLIPBOARD.UTF8_TEXT))));
    // One token: the grab goes; one more: the first of the answer's three chunks.
    feed(h, msg(MSG_MAIN.AGENT_TOKEN, u32(2)));
    const dataBefore = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA).length;
    feed(h, msg(MSG_MAIN.AGENT_DISCONNECTED, u32(0)));
    feed(h, msg(MSG_MAIN.AGENT_CONNECTED_TOKENS, u32(10)));
    const after = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.DATA).slice(dataBefore);
    // The answer's two remaining chunks, then the new announcement: the server's filter sees one whole message.
    expect(after.map((m) => m.body.length)).toEqual([2048, 5000 + 4 + 20 - 2 * 2048, 28]);
    expect(after.slice(0, 2).every((m) => m.secret)).toBe(true);
    expect(Buffer.from(after[2]?.body ?? []).readUInt32LE(4)).toBe(VD_AGENT.ANNOUNCE_CAPABILITIES);
  });

  test('tokens survive an agent disconnect: a plain AGENT_CONNECTED (no tokens) can still send', () => {
    const h = harness({ agent: false, tokens: 10 });
    feed(h, msg(MSG_MAIN.AGENT_CONNECTED));
    expect(agentSent(h).map((m) => m.type)).toEqual([VD_AGENT.ANNOUNCE_CAPABILITIES]);
    feed(h, msg(MSG_MAIN.AGENT_DISCONNECTED, u32(0)));
    feed(h, msg(MSG_MAIN.AGENT_CONNECTED));
    expect(agentSent(h).map((m) => m.type)).toEqual([VD_AGENT.ANNOUNCE_CAPABILITIES, VD_AGENT.ANNOUNCE_CAPABILITIES]);
  });

  test('the server closes mid AGENT_DATA: the unread tail is not released to the capture', () => {
    const h = harness();
    guestReady(h);
    const whole = agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from('half a secret'))));
    const readTo = h.fed.length;
    expect(h.marks.examined).toBe(readTo);
    feed(h, whole.subarray(0, whole.length - 3));
    h.main.end(null);
    expect(h.marks.examined).toBe(readTo);
    // A protocol error behind a whole AGENT_DATA in the same read: the error's bytes are not released either.
    const g = harness();
    guestReady(g);
    const ok = g.fed.length;
    feed(g, Buffer.concat([msg(50), agentData(agentMessage(VD_AGENT.CLIPBOARD, typed(VD_CLIPBOARD.UTF8_TEXT, Buffer.from('secret'))))]));
    expect(g.closed.length).toBe(1);
    expect(g.marks.examined).toBe(ok);
  });

  test('resize: one monitor of the asked size when the agent takes MONITORS_CONFIG; refused otherwise', () => {
    const h = harness();
    expect(h.session.input.capabilities().resize).toBe(false);
    expect(inputError(() => { h.session.input.resize?.(800, 600); }).code).toBe('INPUT_UNSUPPORTED');
    guestReady(h);
    // An agent that did not announce MONITORS_CONFIG takes no size.
    expect(h.session.input.capabilities().resize).toBe(false);
    expect(inputError(() => { h.session.input.resize?.(800, 600); }).message).toMatch(/cannot be resized/);
    guestReady(h, [VD_AGENT_CAP.MONITORS_CONFIG]);
    expect(h.session.input.capabilities().resize).toBe(true);
    h.session.input.resize?.(1000, 700);
    // VDAgentMonitorsConfig: 1 monitor, no flags; VDAgentMonConfig height, width, depth, x, y.
    expect(agentSent(h).at(-1)).toEqual({ type: VD_AGENT.MONITORS_CONFIG, data: new Uint8Array(new ByteWriter().u32(1, true).u32(0, true).u32(700, true).u32(1000, true).u32(32, true).u32(0, true).u32(0, true).finish()), secret: false });
    for (const [w, ht] of [[0, 600], [800, 0], [1.5, 600], [20000, 600], [Number.NaN, 1]] as const) {
      expect({ w, ht, code: inputError(() => { h.session.input.resize?.(w, ht); }).code }).toEqual({ w, ht, code: 'INPUT_BAD_VALUE' });
    }
    feed(h, msg(MSG_MAIN.AGENT_DISCONNECTED, u32(0)));
    expect(h.session.input.capabilities().resize).toBe(false);
  });

  test('the agent comes and goes: AGENT_DISCONNECTED, then AGENT_CONNECTED_TOKENS starts it again', () => {
    const h = harness();
    guestReady(h);
    feed(h, msg(MSG_MAIN.AGENT_DISCONNECTED, u32(0)));
    expect(h.session.input.capabilities().clipboard).toBe(AGENT_PROBLEM.NONE);
    const starts = sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.START).length;
    feed(h, msg(MSG_MAIN.AGENT_CONNECTED_TOKENS, u32(4)));
    expect(sent(h).filter((m) => m.type === MSGC_MAIN_AGENT.START).length).toBe(starts + 1);
    expect(h.session.input.capabilities().clipboard).toBe(AGENT_PROBLEM.STARTING);
    guestReady(h);
    expect(h.session.input.capabilities().clipboard).toBeNull();
  });
});
