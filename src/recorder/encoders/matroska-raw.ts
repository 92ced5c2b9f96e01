/**
 * The smallest Matroska stream ffmpeg demuxes as raw I420 video with a timestamp per frame: what the ffmpeg
 * encoder backend writes to the child's stdin. Matroska rather than `-f rawvideo`, because raw video has no
 * timestamps of its own and the backend uses them as a side channel (ffmpeg.ts: which frames must be
 * keyframes). Layout (Matroska spec, RFC 9559): EBML header, a Segment of unknown size (a stream), Info with
 * a 1 ms timestamp scale, one video track `V_UNCOMPRESSED` whose ColourSpace FourCC `I420` ffmpeg maps to
 * yuv420p, then one Cluster per frame holding one SimpleBlock. Every element size is written as an 8-byte
 * EBML integer, so sizes never need a second pass.
 */
import { concatBytes } from '../../util/bytes';

/** An EBML element ID, written as its bytes (IDs carry their own length marker). */
function idBytes(id: number): Uint8Array {
  const out: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.from(out);
}

/** An element size as an 8-byte EBML variable-size integer (marker 0x01, then 56 bits). */
function sizeBytes(n: number): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = 0x01;
  let v = n;
  for (let i = 7; i >= 1; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}


function element(id: number, ...body: Uint8Array[]): Uint8Array {
  const data = concatBytes(body);
  return concatBytes([idBytes(id), sizeBytes(data.length), data]);
}

function uint(id: number, value: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(value));
  return element(id, b);
}

function text(id: number, s: string): Uint8Array {
  return element(id, new TextEncoder().encode(s));
}

/** Matroska element IDs used here. */
const ID = {
  EBML: 0x1a45dfa3, EBMLVersion: 0x4286, EBMLReadVersion: 0x42f7, EBMLMaxIDLength: 0x42f2, EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282, DocTypeVersion: 0x4287, DocTypeReadVersion: 0x4285,
  Segment: 0x18538067, Info: 0x1549a966, TimestampScale: 0x2ad7b1, MuxingApp: 0x4d80, WritingApp: 0x5741,
  Tracks: 0x1654ae6b, TrackEntry: 0xae, TrackNumber: 0xd7, TrackUID: 0x73c5, TrackType: 0x83, CodecID: 0x86,
  Video: 0xe0, PixelWidth: 0xb0, PixelHeight: 0xba, ColourSpace: 0x2eb524,
  Cluster: 0x1f43b675, Timestamp: 0xe7, SimpleBlock: 0xa3,
} as const;

/** Everything before the first frame: EBML header, an open-ended Segment, Info and the one video track. */
export function matroskaRawHeader(width: number, height: number): Uint8Array {
  return concatBytes([
    element(ID.EBML,
      uint(ID.EBMLVersion, 1), uint(ID.EBMLReadVersion, 1), uint(ID.EBMLMaxIDLength, 4), uint(ID.EBMLMaxSizeLength, 8),
      text(ID.DocType, 'matroska'), uint(ID.DocTypeVersion, 4), uint(ID.DocTypeReadVersion, 2)),
    // Unknown size (all 56 bits set): the segment runs until the stream ends.
    idBytes(ID.Segment), Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    element(ID.Info, uint(ID.TimestampScale, 1_000_000), text(ID.MuxingApp, 'deskrec'), text(ID.WritingApp, 'deskrec')),
    element(ID.Tracks, element(ID.TrackEntry,
      uint(ID.TrackNumber, 1), uint(ID.TrackUID, 1), uint(ID.TrackType, 1), text(ID.CodecID, 'V_UNCOMPRESSED'),
      element(ID.Video, uint(ID.PixelWidth, width), uint(ID.PixelHeight, height), element(ID.ColourSpace, new TextEncoder().encode('I420'))))),
  ]);
}

/**
 * One frame: a Cluster at `timestampMs` with one SimpleBlock (track 1, relative time 0, keyframe flag — raw
 * pictures stand alone) around `planeBytes` bytes of picture. Returns the bytes that precede the picture, so
 * the caller writes the planes themselves without another copy.
 */
export function matroskaRawFrameHead(timestampMs: number, planeBytes: number): Uint8Array {
  const blockHead = Uint8Array.of(0x81, 0x00, 0x00, 0x80);
  const ts = uint(ID.Timestamp, timestampMs);
  const simpleBlockHead = concatBytes([idBytes(ID.SimpleBlock), sizeBytes(blockHead.length + planeBytes)]);
  const clusterBody = ts.length + simpleBlockHead.length + blockHead.length + planeBytes;
  return concatBytes([idBytes(ID.Cluster), sizeBytes(clusterBody), ts, simpleBlockHead, blockHead]);
}
