/**
 * The files a viewer page is made of: our own page (src/viewer/web/) and noVNC's ES modules, served from
 * the installed @novnc/novnc package as they are (no bundler, no CDN). noVNC's `core/` and `vendor/`
 * folders import each other by relative URL, so they are served under one prefix with their layout kept;
 * only `.js` files inside those two folders are served, and every path is resolved and checked to stay
 * inside them (no `..`, no symlink tricks through the URL).
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** One servable file. */
export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The installed noVNC package folder. Its package.json exports only `core/rfb.js` (and not package.json),
 * so the folder is found from that entry point.
 */
function novncRoot(): string {
  const entry = require.resolve('@novnc/novnc');
  return path.dirname(path.dirname(entry));
}

/**
 * Our page's folder. From TypeScript sources (jest) it sits beside this file; from the compiled `dist-ts/`
 * tree it is the same folder in the sources, which ship with the package.
 */
function webRoot(): string {
  const beside = path.join(__dirname, 'web');
  if (existsSync(beside)) return beside;
  return path.resolve(__dirname, '..', '..', '..', 'src', 'viewer', 'web');
}

/** Serves the viewer's static files, read once and kept in memory (they are small and never change). */
export class Assets {
  private readonly cache = new Map<string, Asset | null>();
  private readonly novnc: string;
  private readonly web: string;

  constructor() {
    this.novnc = realpathSync(novncRoot());
    this.web = realpathSync(webRoot());
  }

  /** Our page's file `name` (e.g. `index.html`), or null. */
  page(name: string): Asset | null {
    return this.load(this.web, name);
  }

  /** A noVNC module by its path below the package (`core/rfb.js`, `vendor/pako/…`), or null. */
  novncModule(rel: string): Asset | null {
    if (!rel.endsWith('.js') || !(rel.startsWith('core/') || rel.startsWith('vendor/'))) return null;
    return this.load(this.novnc, rel);
  }

  private load(root: string, rel: string): Asset | null {
    const key = `${root}\0${rel}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const asset = readInside(root, rel);
    this.cache.set(key, asset);
    return asset;
  }
}

function readInside(root: string, rel: string): Asset | null {
  if (rel.includes('\0') || path.isAbsolute(rel)) return null;
  const type = TYPES[path.extname(rel)];
  if (type === undefined) return null;
  const full = path.resolve(root, rel);
  if (!full.startsWith(root + path.sep)) return null;
  try {
    const real = realpathSync(full);
    if (!real.startsWith(root + path.sep) || !statSync(real).isFile()) return null;
    return { body: readFileSync(real), type };
  } catch {
    return null;
  }
}
