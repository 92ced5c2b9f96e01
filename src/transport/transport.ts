/**
 * A transport carries one protocol stream (an RFB connection, one SPICE channel) as plaintext byte chunks.
 * TLS lives inside the transport, so what protocol clients see — and what a capture records — is the same
 * for every protocol and every security setting. The transport also owns the session clock: live
 * transports tell real time since the session started; a capture replay tells the recorded times.
 */

/**
 * Bytes a transport lets wait in memory for a peer that does not read them (beyond what the kernel's
 * socket buffer holds). Everything deskrec sends is small — requests, acknowledgements, input; the
 * largest single message is a 256 KiB clipboard — so a peer this far behind is not reading at all.
 */
export const MAX_UNSENT_BYTES = 1 << 20;

/** Which way a chunk went. */
export type Direction = 'in' | 'out';

/** Observes every chunk a transport carries (capture files hook in here). */
export interface TransportTap {
  chunk(stream: number, dir: Direction, data: Uint8Array, t_us: number): void;
  /** A stream was opened (SPICE opens one per channel); `info` says what it carries. */
  opened?(stream: number, info: Record<string, unknown>, t_us: number): void;
}

/** What a protocol client needs to hear from its transport. */
export interface TransportHandlers {
  /** A chunk and its arrival time (session ms): frame times come from the data, so replays match. */
  data(chunk: Uint8Array, t_ms: number): void;
  /**
   * The peer closed (err null) or the connection failed. A reset or a broken pipe after the peer has
   * closed its end counts as the peer closing: it is how a server that shuts down with our last request
   * unread looks from here (a real failure is a timeout, an unreachable network, a TLS error).
   */
  close(err: Error | null): void;
  /** What was waiting to be sent has gone: `congested` is false again (see Transport.congested). */
  drain?(): void;
}

/** TLS settings for an in-place upgrade (VeNCrypt, SPICE TLS ports). */
export interface TlsOptions {
  /** Server name for SNI and certificate checks. */
  servername?: string;
  /** PEM CA bundle to verify the server against (`--tls-ca`). */
  ca?: string | Buffer;
  /** Skip certificate verification (`--tls-insecure`). */
  insecure: boolean;
  /** Anonymous Diffie-Hellman (VeNCrypt's TLS* subtypes): no certificate at all. */
  anonymous: boolean;
}

/** One byte stream. */
export interface Transport {
  /** Stream number in a session (0 for RFB; the SPICE channel's index). */
  readonly stream: number;
  /** Host:port, for messages (never secrets). */
  readonly remote: string;
  /** Session time now, in milliseconds (see the module comment). */
  now(): number;
  /** Starts delivering data to `h` (chunks that arrived before are delivered at once). */
  attach(h: TransportHandlers): void;
  /**
   * Sends bytes. `secret` marks credentials (a VNC challenge response, a password): taps record zeros of
   * the same length in their place, so capture files never hold them. Bytes the peer has not read yet
   * wait in memory only up to a small bound (MAX_UNSENT_BYTES): a write past it fails the connection with
   * SERVER_NOT_READING instead of growing without end.
   */
  write(data: Uint8Array, opts?: { secret?: boolean }): void;
  /**
   * True while earlier writes wait in our memory because the peer is not reading them (the socket
   * buffer is full); `drain` is called when they have gone. Protocol clients hold back what can be
   * merged (an update request, a pointer move) while it is true and send the newest once it drains.
   */
  readonly congested: boolean;
  /** Session time (ms) the last chunk arrived, or when the transport opened if none has. */
  readonly lastReceivedMs: number;
  /**
   * Stops reading from the peer until `resume()` (TCP backpressure: the peer's sends then block in the
   * kernel instead of piling up in our memory while the client works through what it has). Transports
   * that are fed by their owner (replays) need not implement it.
   */
  pause?(): void;
  resume?(): void;
  /** Upgrades the stream to TLS in place; resolves once the handshake is done. */
  startTls(opts: TlsOptions): Promise<void>;
  /** Closes the stream. */
  close(): void;
}
