/**
 * Loads the real-server test harness (test/helpers/servers/) for benchmarks.
 *
 * Why not a plain `import`: tsconfig.build.json builds `src/**` and `bench/**` with only Node's types, and
 * the harness's registry.ts calls jest's `afterAll` (in `useServerCleanup`), so importing it from bench code
 * breaks `npm run bench`'s build. Instead the harness's few files are transpiled here at run time with the
 * TypeScript compiler (syntax only; `npm run typecheck` type-checks them) into dist-ts/bench/harness/ and
 * loaded from there. The interfaces below are the part of the harness the benchmarks use; they mirror
 * xvnc.ts, x11-clients.ts, proc.ts and registry.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/** A picture, 4 bytes a pixel (R, G, B, A=255), rows top to bottom (harness image.ts). */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** A running Xvnc (harness xvnc.ts, the members used here). */
export interface XvncServer {
  display: number;
  port: number;
  host: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  stop(): Promise<void>;
  screenshotRgba(): Promise<RgbaImage>;
  run(cmd: string, args: string[]): ChildProcess;
  pauseClients(): void;
  resumeClients(): void;
}

/** An X client started on a server (harness x11-clients.ts). */
export interface XClient {
  process: ChildProcess;
  window: string;
}

/** Output of a finished tool run (harness proc.ts). */
export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/** The harness functions the benchmarks call. */
export interface Harness {
  startXvnc(opts: { width: number; height: number; security: 'None'; startTimeoutMs?: number }): Promise<XvncServer>;
  startScrollingXterm(server: XvncServer, opts?: { geometry?: string; intervalMs?: number }): Promise<XClient>;
  startXclock(server: XvncServer, opts?: { geometry?: string }): Promise<XClient>;
  startTypingXterm(server: XvncServer, opts?: { geometry?: string }): Promise<XClient>;
  requireCommand(name: string): string;
  runTool(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number; cwd?: string }): Promise<RunResult>;
  stopAllServers(): Promise<void>;
}

const FILES = ['registry', 'proc', 'ports', 'image', 'rfb', 'xvnc', 'x11-clients'];

/**
 * Transpiles test/helpers/servers/NAME.ts for each name into dist-ts/bench/harness/ (syntax only; the
 * typecheck covers them) and returns that directory, so every bench section shares one registry and proc
 * module.
 */
export function transpileHarness(names: readonly string[]): string {
  const root = path.resolve(__dirname, '..', '..');
  const srcDir = path.join(root, 'test', 'helpers', 'servers');
  const outDir = path.join(__dirname, 'harness');
  mkdirSync(outDir, { recursive: true });
  for (const name of names) {
    const fileName = path.join(srcDir, `${name}.ts`);
    const out = ts.transpileModule(readFileSync(fileName, 'utf8'), {
      fileName,
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, strict: true },
    });
    const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length > 0) {
      throw new Error(`${fileName}: ${errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`);
    }
    // The harness imports the product from test/helpers/servers/ as '../../../src/…'; from dist-ts/bench/harness/
    // the compiled product is '../../src/…' (the same path would reach the TypeScript sources, which node cannot load).
    writeFileSync(path.join(outDir, `${name}.js`), out.outputText.replace(/(require\(["'])\.\.\/\.\.\/\.\.\/src\//g, '$1../../src/'));
  }
  return outDir;
}

/** Transpiles the harness into dist-ts/bench/harness/ and loads it. */
export async function loadHarness(): Promise<Harness> {
  const outDir = transpileHarness(FILES);
  const load = async <T>(name: string): Promise<T> => (await import(path.join(outDir, `${name}.js`))) as T;
  const xvnc = await load<Pick<Harness, 'startXvnc'>>('xvnc');
  const clients = await load<Pick<Harness, 'startScrollingXterm' | 'startXclock' | 'startTypingXterm'>>('x11-clients');
  const proc = await load<Pick<Harness, 'requireCommand' | 'runTool'>>('proc');
  const registry = await load<Pick<Harness, 'stopAllServers'>>('registry');
  return {
    startXvnc: xvnc.startXvnc,
    startScrollingXterm: clients.startScrollingXterm,
    startXclock: clients.startXclock,
    startTypingXterm: clients.startTypingXterm,
    requireCommand: proc.requireCommand,
    runTool: proc.runTool,
    stopAllServers: registry.stopAllServers,
  };
}
