/**
 * sharp (libvips), loaded on first use. Loading it maps libvips and its dependencies — ≈ 19 MB of resident
 * memory measured on Node 20 — which a recording that never decodes a JPEG or writes a PNG should not pay
 * (issue 12, target 4: peak RSS of one recording). Every caller is already asynchronous.
 */
import type Sharp from 'sharp';

let loading: Promise<typeof Sharp> | null = null;

export function loadSharp(): Promise<typeof Sharp> {
  loading ??= import('sharp').then((m) => m.default);
  return loading;
}
