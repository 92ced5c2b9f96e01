/**
 * RFB security negotiation, from the server's security types to the SecurityResult (RFC 6143 §7.1.2,
 * §7.1.3, §7.2): None, VNC Authentication (the DES challenge-response of des.ts) and VeNCrypt (rfbproto's
 * "VeNCrypt" section; TigerVNC `common/rfb/CSecurityVeNCrypt.cxx`) with its Plain, TLS* (anonymous TLS) and
 * X509* (certificate-checked TLS) sub-types, the TLS ones upgrading the transport in place.
 *
 * The RFB client (../client.ts) creates one negotiation after the ProtocolVersion exchange and calls `step`
 * from its own state switch until it says `done`, then sends ClientInit. The negotiation keeps its own
 * sub-states, so the client's union has one `security` state rather than a dozen.
 *
 * Credentials (the challenge response, the Plain user name and password) are written with
 * `secret: true`: capture taps record zeros in their place (src/transport/transport.ts).
 */
import { AuthError, ConnectError } from '../../../errors';
import type { Transport } from '../../../transport/transport';
import type { ByteQueue } from '../../../wire/queue';
import { ByteReader, capLength } from '../../../wire/reader';
import { ByteWriter } from '../../../wire/writer';
import { vncAuthResponse } from './des';

/** Security types (RFC 6143 §7.2; 19 is VeNCrypt in IANA's RFB registry). */
const SEC = { INVALID: 0, NONE: 1, VNC_AUTH: 2, VENCRYPT: 19 } as const;
/** VeNCrypt sub-types (besides the plain security types None and VNC Authentication, which it also lists). */
const VENCRYPT = {
  PLAIN: 256, TLS_NONE: 257, TLS_VNC: 258, TLS_PLAIN: 259, X509_NONE: 260, X509_VNC: 261, X509_PLAIN: 262,
} as const;

/** Longest failure reason a server may declare (caps before allocating). */
const MAX_REASON = 64 * 1024;

/** What the negotiation needs of the client's options: the credentials and the TLS settings. */
export interface SecurityOptions {
  password: string | null;
  username: string | null;
  tls: { ca?: Buffer; insecure: boolean; servername: string };
}

/** What the negotiation needs of the transport. */
export type SecurityTransport = Pick<Transport, 'remote' | 'write' | 'startTls'>;

/** The negotiation's sub-states, from the security types to the end of the SecurityResult. */
type SecurityState =
  | { k: 'sec-types' }
  | { k: 'sec-type-33' }
  | { k: 'sec-reason'; during: string }
  | { k: 'vnc-challenge' }
  | { k: 'vencrypt-version' }
  | { k: 'vencrypt-ack' }
  | { k: 'vencrypt-subtypes' }
  | { k: 'vencrypt-tls-ack'; subtype: number }
  | { k: 'tls' }
  | { k: 'plain-sent' }
  | { k: 'sec-result' }
  | { k: 'done' };

/**
 * What one step asks of the client: `wait` for more bytes, step again after `progress`, step again once
 * `upgrade` (the in-place TLS handshake) resolves, or send ClientInit after `done`.
 */
export type SecurityStep = { k: 'wait' } | { k: 'progress' } | { k: 'tls'; upgrade: Promise<void> } | { k: 'done' };

const WAIT: SecurityStep = { k: 'wait' };
const PROGRESS: SecurityStep = { k: 'progress' };
const DONE: SecurityStep = { k: 'done' };

/** One security negotiation of one RFB connection. */
export class SecurityNegotiation {
  private state: SecurityState;
  private securityName = 'None';

  /** `minor` is the RFB 3.x minor version agreed on (3, 7 or 8): 3.3 lets the server pick the type. */
  constructor(private readonly transport: SecurityTransport, private readonly opts: SecurityOptions, private readonly minor: number) {
    this.state = minor === 3 ? { k: 'sec-type-33' } : { k: 'sec-types' };
  }

  /** The security used, as the client's `ready` event reports it ('None', 'VeNCrypt X509Vnc', …). */
  get name(): string {
    return this.securityName;
  }

  /** The current sub-state, for the message when the server closes the connection in the middle of it. */
  get phase(): string {
    return this.state.k;
  }

  /** True while the server is judging credentials: closing the connection then means it refused them. */
  get authenticating(): boolean {
    return this.state.k === 'sec-result' || this.state.k === 'vnc-challenge' || this.state.k === 'plain-sent';
  }

  /** Parses what the received bytes allow of the current sub-state (see SecurityStep). */
  step(q: ByteQueue): SecurityStep {
    const s = this.state;
    switch (s.k) {
      case 'sec-type-33': {
        if (q.length < 4) return WAIT;
        const t = new ByteReader(q.take(4)).u32();
        if (t === SEC.INVALID) { this.state = { k: 'sec-reason', during: 'security negotiation' }; return PROGRESS; }
        return this.beginSecurity(t);
      }
      case 'sec-types': {
        const n = q.peekByte(0);
        if (n === undefined) return WAIT;
        if (n === 0) { q.skip(1); this.state = { k: 'sec-reason', during: 'security negotiation' }; return PROGRESS; }
        if (q.length < 1 + n) return WAIT;
        const types = Array.from(q.take(1 + n).subarray(1));
        const chosen = this.chooseSecurity(types);
        this.transport.write(Uint8Array.of(chosen));
        return this.beginSecurity(chosen);
      }
      case 'sec-reason': {
        if (q.length < 4) return WAIT;
        const len = capLength(new ByteReader(q.view()).u32(), MAX_REASON, 'failure reason');
        if (q.length < 4 + len) return WAIT;
        const reason = Buffer.from(q.take(4 + len).subarray(4)).toString('utf8');
        const authLike = s.during === 'authentication';
        throw authLike
          ? new AuthError('AUTH_FAILED', `${this.transport.remote} refused authentication: ${reason || 'no reason given'}`)
          : new ConnectError('SERVER_REFUSED', `${this.transport.remote} refused the connection: ${reason || 'no reason given'}`);
      }
      case 'vnc-challenge': {
        if (q.length < 16) return WAIT;
        const challenge = q.take(16);
        if (this.opts.password === null) {
          throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
        }
        this.transport.write(vncAuthResponse(this.opts.password, challenge), { secret: true });
        this.state = { k: 'sec-result' };
        return PROGRESS;
      }
      case 'vencrypt-version': {
        if (q.length < 2) return WAIT;
        const [major, minor] = q.take(2);
        if (major !== 0 || (minor ?? 0) < 2) throw new AuthError('AUTH_UNSUPPORTED', `VeNCrypt ${major ?? '?'}.${minor ?? '?'} is not supported (need 0.2)`);
        this.transport.write(Uint8Array.of(0, 2));
        this.state = { k: 'vencrypt-ack' };
        return PROGRESS;
      }
      case 'vencrypt-ack': {
        if (q.length < 1) return WAIT;
        if (q.take(1)[0] !== 0) throw new AuthError('AUTH_UNSUPPORTED', 'the server refused VeNCrypt 0.2');
        this.state = { k: 'vencrypt-subtypes' };
        return PROGRESS;
      }
      case 'vencrypt-subtypes': {
        const n = q.peekByte(0);
        if (n === undefined) return WAIT;
        if (q.length < 1 + 4 * n) return WAIT;
        const r = new ByteReader(q.take(1 + 4 * n), 1);
        const subs: number[] = [];
        for (let i = 0; i < n; i++) subs.push(r.u32());
        const chosen = this.chooseVencrypt(subs);
        this.transport.write(new ByteWriter(4).u32(chosen).finish());
        if (chosen === VENCRYPT.PLAIN) {
          this.securityName = 'VeNCrypt Plain';
          this.sendPlain();
          return PROGRESS;
        }
        if (chosen === SEC.NONE || chosen === SEC.VNC_AUTH) {
          this.securityName = `VeNCrypt ${chosen === SEC.NONE ? 'None' : 'VncAuth'}`;
          return this.beginSecurity(chosen, true);
        }
        this.state = { k: 'vencrypt-tls-ack', subtype: chosen };
        return PROGRESS;
      }
      case 'vencrypt-tls-ack': {
        if (q.length < 1) return WAIT;
        if (q.take(1)[0] !== 1) throw new AuthError('AUTH_FAILED', 'the server refused the VeNCrypt sub-type');
        const sub = s.subtype;
        const anonymous = sub === VENCRYPT.TLS_NONE || sub === VENCRYPT.TLS_VNC || sub === VENCRYPT.TLS_PLAIN;
        this.state = { k: 'tls' };
        this.securityName = `VeNCrypt ${vencryptName(sub)}`;
        const upgrade = this.transport.startTls({ anonymous, insecure: this.opts.tls.insecure, ca: this.opts.tls.ca, servername: this.opts.tls.servername })
          .then(() => {
            // The sub-type's own authentication runs inside TLS.
            if (sub === VENCRYPT.TLS_VNC || sub === VENCRYPT.X509_VNC) this.state = { k: 'vnc-challenge' };
            else if (sub === VENCRYPT.TLS_PLAIN || sub === VENCRYPT.X509_PLAIN) this.sendPlain();
            else this.state = { k: 'sec-result' };
          });
        return { k: 'tls', upgrade };
      }
      case 'tls':
        // The client does not step while the TLS handshake runs; nothing is read from the queue meanwhile.
        return WAIT;
      case 'plain-sent':
      case 'sec-result': {
        if (q.length < 4) return WAIT;
        const result = new ByteReader(q.take(4)).u32();
        if (result !== 0) {
          if (this.minor >= 8) { this.state = { k: 'sec-reason', during: 'authentication' }; return PROGRESS; }
          throw new AuthError('AUTH_FAILED', `${this.transport.remote} rejected the credentials`);
        }
        this.state = { k: 'done' };
        return DONE;
      }
      case 'done':
        return DONE;
      default: {
        const unreachable: never = s;
        throw new Error(`unknown security state ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private chooseSecurity(types: number[]): number {
    // The server lists types in its order of preference; take the first we can complete with what we have.
    for (const t of types) {
      if (t === SEC.NONE) return t;
      if (t === SEC.VNC_AUTH && this.opts.password !== null) return t;
      if (t === SEC.VENCRYPT) return t;
    }
    if (types.includes(SEC.VNC_AUTH)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
    }
    throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} offers no security type deskrec supports (offered: ${types.join(', ')}; supported: None, VNC Authentication, VeNCrypt)`);
  }

  private chooseVencrypt(subs: number[]): number {
    const hasPw = this.opts.password !== null;
    const hasUser = this.opts.username !== null;
    for (const t of subs) {
      switch (t) {
        case SEC.NONE: case VENCRYPT.TLS_NONE: case VENCRYPT.X509_NONE: return t;
        case SEC.VNC_AUTH: case VENCRYPT.TLS_VNC: case VENCRYPT.X509_VNC: if (hasPw) return t; break;
        case VENCRYPT.PLAIN: case VENCRYPT.TLS_PLAIN: case VENCRYPT.X509_PLAIN: if (hasPw && hasUser) return t; break;
        default: break;
      }
    }
    const needsUser = subs.some((t) => t === VENCRYPT.PLAIN || t === VENCRYPT.TLS_PLAIN || t === VENCRYPT.X509_PLAIN);
    if (needsUser && (!hasUser || !hasPw)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a user name and password: put the user in the URL (vnc://user@host) and the password in --password-file or DESKREC_VNC_PASSWORD`);
    }
    if (!hasPw && subs.some((t) => t === SEC.VNC_AUTH || t === VENCRYPT.TLS_VNC || t === VENCRYPT.X509_VNC)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
    }
    throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} offers no VeNCrypt sub-type deskrec supports (offered: ${subs.join(', ')})`);
  }

  private beginSecurity(t: number, inVencrypt = false): SecurityStep {
    switch (t) {
      case SEC.NONE:
        if (!inVencrypt) this.securityName = 'None';
        // 3.3 and 3.7 send no SecurityResult after None (RFC 6143 §7.1.3); VeNCrypt always does.
        if (this.minor >= 8 || inVencrypt) {
          this.state = { k: 'sec-result' };
          return PROGRESS;
        }
        this.state = { k: 'done' };
        return DONE;
      case SEC.VNC_AUTH:
        if (!inVencrypt) this.securityName = 'VNC Authentication';
        this.state = { k: 'vnc-challenge' };
        return PROGRESS;
      case SEC.VENCRYPT:
        this.securityName = 'VeNCrypt';
        this.state = { k: 'vencrypt-version' };
        return PROGRESS;
      default:
        throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} requires security type ${t}, which deskrec does not support`);
    }
  }

  private sendPlain(): void {
    const user = Buffer.from(this.opts.username ?? '', 'utf8');
    const pw = Buffer.from(this.opts.password ?? '', 'utf8');
    this.transport.write(new ByteWriter(8 + user.length + pw.length).u32(user.length).u32(pw.length).bytes(user).bytes(pw).finish(), { secret: true });
    this.state = { k: 'plain-sent' };
  }
}

function vencryptName(sub: number): string {
  const names: Record<number, string> = {
    [VENCRYPT.PLAIN]: 'Plain', [VENCRYPT.TLS_NONE]: 'TLSNone', [VENCRYPT.TLS_VNC]: 'TLSVnc', [VENCRYPT.TLS_PLAIN]: 'TLSPlain',
    [VENCRYPT.X509_NONE]: 'X509None', [VENCRYPT.X509_VNC]: 'X509Vnc', [VENCRYPT.X509_PLAIN]: 'X509Plain',
  };
  return names[sub] ?? String(sub);
}
