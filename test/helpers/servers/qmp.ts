/**
 * A small QMP (QEMU Machine Protocol) client: line-delimited JSON over QEMU's unix socket; greeting,
 * `qmp_capabilities`, then one command at a time matched to its reply by `id`; events are kept, not waited on.
 */
import { connect, type Socket } from 'node:net';

/** A JSON value as QMP sends it. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** An asynchronous QMP event (e.g. STOP, RESUME, VNC_CONNECTED). */
export interface QmpEvent {
  event: string;
  data?: Json;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (v: Json) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  command: string;
}

/** A connected QMP session in command mode. */
export class QmpClient {
  /** Events received so far, oldest first. */
  readonly events: QmpEvent[] = [];
  /** QEMU's version from the greeting, e.g. "7.2.22". */
  version = '';
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeting: ((g: Json) => void) | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket, private readonly timeoutMs: number) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { this.onData(d); });
    const fail = (e: Error): void => {
      this.closedError ??= e;
      for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(e); }
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => { fail(new Error('QMP connection closed')); });
  }

  /** Connects to `path`, reads the greeting and enters command mode. */
  static async connect(path: string, timeoutMs = 10000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      const t = setTimeout(() => { s.destroy(); reject(new Error(`QMP connect ${path}: timed out`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(t); resolve(s); });
      s.once('error', (e) => { clearTimeout(t); s.destroy(); reject(e); });
    });
    const c = new QmpClient(socket, timeoutMs);
    const greeting = await new Promise<Json>((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error('QMP: no greeting')); }, timeoutMs);
      c.greeting = (g) => { clearTimeout(t); resolve(g); };
    });
    const q = (greeting as { QMP?: { version?: { qemu?: { major: number; minor: number; micro: number } } } }).QMP;
    const v = q?.version?.qemu;
    c.version = v === undefined ? '' : `${v.major}.${v.minor}.${v.micro}`;
    await c.execute('qmp_capabilities');
    return c;
  }

  private onData(d: string): void {
    this.buffer += d;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') continue;
      let msg: { [k: string]: Json };
      try {
        msg = JSON.parse(line) as { [k: string]: Json };
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        const g = this.greeting;
        this.greeting = undefined;
        g?.(msg);
      } else if (typeof msg.event === 'string') {
        this.events.push(msg as unknown as QmpEvent);
      } else {
        const id = typeof msg.id === 'string' ? msg.id : '';
        const p = this.pending.get(id);
        if (p === undefined) continue;
        this.pending.delete(id);
        clearTimeout(p.timer);
        const err = msg.error as { class?: string; desc?: string } | undefined;
        if (err !== undefined) p.reject(new Error(`QMP ${p.command}: ${err.class ?? 'Error'}: ${err.desc ?? ''}`));
        else p.resolve(msg.return ?? null);
      }
    }
  }

  /** Runs a command and resolves with its `return` value; rejects with QEMU's error or after the time limit. */
  execute(command: string, args?: { [k: string]: Json }): Promise<Json> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const id = `deskrec-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, command });
      const msg: { [k: string]: Json } = { execute: command, id };
      if (args !== undefined) msg.arguments = args;
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Closes the socket. */
  close(): void {
    this.socket.destroy();
  }
}
