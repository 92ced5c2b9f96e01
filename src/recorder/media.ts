/**
 * mediabunny (the MP4 writer and reader), loaded from its minified bundle, and a file source for it.
 *
 * Why the minified bundle: the package's Node entry is its unminified CommonJS bundle (1.5 MB of source), and
 * V8 keeps a script's source and its parse data resident: a `record` process peaks about 5 MB lower with the
 * minified one (docs/BENCHMARKS.md, "Issue 12, fifth round"). That bundle is the browser build of the same
 * version: the same classes, except that its `FilePathSource` has no file system behind it and throws, so
 * files are read through `mediaFileSource` below. The package's `exports` map does not list the bundle: it is
 * loaded by path beside the entry that `require.resolve` finds, typed as the package. test/recorder/media.test.ts
 * checks that this module's classes are the bundle's and that MP4s read back through `mediaFileSource`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type * as Mediabunny from 'mediabunny';

/** The bundle's file name, beside the package's Node entry (dist/bundles/). */
export const MINIFIED_BUNDLE = 'mediabunny.min.cjs';

function load(): typeof Mediabunny {
  const entry = require.resolve('mediabunny');
  // A dynamic require: the path is only known here (the exports map hides the file from a plain specifier).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(path.dirname(entry), MINIFIED_BUNDLE)) as typeof Mediabunny;
}

const mb = load();

export const {
  ALL_FORMATS, CustomSource, EncodedPacket, EncodedPacketSink, EncodedVideoPacketSource, Input, Mp4OutputFormat,
  Output, StreamTarget,
} = mb;
export type EncodedPacket = Mediabunny.EncodedPacket;
export type EncodedVideoPacketSource = Mediabunny.EncodedVideoPacketSource;
export type Input = Mediabunny.Input;
export type Output = Mediabunny.Output;
export type Source = Mediabunny.Source;
export type StreamTargetChunk = Mediabunny.StreamTargetChunk;

/**
 * A mediabunny source reading `file` (its first `length` bytes when given, else the whole file as it is when
 * first asked for its size). The file is opened on the first read and closed when the Input is disposed.
 * File-system prefetch, as mediabunny's own file source does: an MP4 is read in many small box-sized reads.
 */
export function mediaFileSource(file: string, length?: number): Mediabunny.Source {
  let handle: Promise<fs.FileHandle> | null = null;
  const open = (): Promise<fs.FileHandle> => (handle ??= fs.open(file, 'r'));
  return new CustomSource({
    getSize: async () => length ?? (await (await open()).stat()).size,
    read: async (start: number, end: number) => {
      const fh = await open();
      const out = new Uint8Array(end - start);
      let got = 0;
      while (got < out.length) {
        const { bytesRead } = await fh.read(out, got, out.length - got, start + got);
        if (bytesRead === 0) throw new Error(`${file}: ended at byte ${start + got}, expected ${end}`);
        got += bytesRead;
      }
      return out;
    },
    dispose: () => {
      const h = handle;
      handle = null;
      // Closing can only fail for a handle that is already closed; nothing waits on it.
      if (h !== null) void h.then((fh) => fh.close()).catch(() => undefined);
    },
    prefetchProfile: 'fileSystem',
  });
}
