import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { unreadableFile, UserError } from '../errors.js';

export interface GrayImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** A PNG pixel at least this opaque counts when deciding whether the image is one ink colour (faint anti-aliasing fringes are often off-colour). */
const VISIBLE_ALPHA = 32;
/** How far apart (in 0–255 gray levels) the visible pixels' colours may be and still be one ink colour. */
const ONE_INK_SPREAD = 16;

/**
 * Reads a grayscale image (RGB is averaged); PGM P2/P5 with maxval 255, or PNG. A PNG with transparency is
 * read one of two ways: when its visible pixels are all one colour (a digit drawn on a transparent
 * background), the colour carries nothing and its opacity is the ink (alpha as the pixel value, so the
 * digit comes out white on black, whatever colour it was drawn in); otherwise it is composited over black.
 * `notices` says when the alpha was read as the ink.
 */
export function readImage(path: string): GrayImage & { notices: string[] } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err, 'image');
  }
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    let png: PNG;
    try {
      png = PNG.sync.read(bytes);
    } catch (err) {
      throw new UserError(`${path}: corrupt PNG (${(err as Error).message})`);
    }
    return { ...pngGray(png.data, png.width, png.height, path), width: png.width, height: png.height };
  }
  const text = bytes.subarray(0, 64).toString('latin1');
  const header = /^(P[25])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (!header) throw new UserError(`${path}: not a PNG or PGM (P2/P5) image`);
  const [whole, magic, w, h, max] = header;
  const width = Number(w);
  const height = Number(h);
  if (Number(max) !== 255) throw new UserError(`${path}: PGM maxval ${max}; lockstep reads 8-bit images (maxval 255)`);
  const count = width * height;
  let pixels: Uint8Array;
  if (magic === 'P5') {
    pixels = bytes.subarray(whole.length, whole.length + count);
  } else {
    pixels = Uint8Array.from(bytes.subarray(whole.length).toString('latin1').trim().split(/\s+/).map(Number));
  }
  if (pixels.length !== count) throw new UserError(`${path}: truncated PGM: ${pixels.length} of ${count} pixels`);
  return { pixels: Uint8Array.from(pixels), width, height, notices: [] };
}

/** Gray levels of RGBA pixels: the alpha as ink for one colour on transparency, else over black. */
function pngGray(
  rgba: Uint8Array,
  width: number,
  height: number,
  path: string,
): { pixels: Uint8Array; notices: string[] } {
  const count = width * height;
  const gray = new Float64Array(count);
  let transparent = false;
  let lo = 255;
  let hi = 0;
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    gray[i] = (rgba[o] + rgba[o + 1] + rgba[o + 2]) / 3;
    const alpha = rgba[o + 3];
    if (alpha < 255) transparent = true;
    if (alpha >= VISIBLE_ALPHA) {
      lo = Math.min(lo, gray[i]);
      hi = Math.max(hi, gray[i]);
    }
  }
  const pixels = new Uint8Array(count);
  if (transparent && hi - lo <= ONE_INK_SPREAD) {
    for (let i = 0; i < count; i++) pixels[i] = rgba[i * 4 + 3];
    return {
      pixels,
      notices: [`${path}: one colour on a transparent background: its opacity is read as the ink (white on black)`],
    };
  }
  for (let i = 0; i < count; i++) pixels[i] = Math.round((gray[i] * rgba[i * 4 + 3]) / 255);
  return { pixels, notices: [] };
}

/**
 * Resizes by area averaging: each target pixel is the mean of the source area it covers, partly covered
 * source pixels weighted by the covered fraction (a box filter over the exact area). Computed in integers
 * (a target pixel spans `width` units of 1/targetWidth of a source pixel across), so the result is exact
 * and rounds halves up.
 */
export function resizeArea(image: GrayImage, targetWidth: number, targetHeight: number): Uint8Array {
  const { pixels, width, height } = image;
  const xs = coverage(width, targetWidth);
  const ys = coverage(height, targetHeight);
  const area = width * height; // the units one target pixel covers: width × height
  const out = new Uint8Array(targetWidth * targetHeight);
  for (let ty = 0; ty < targetHeight; ty++) {
    for (let tx = 0; tx < targetWidth; tx++) {
      let sum = 0;
      for (const [sy, wy] of ys[ty]) for (const [sx, wx] of xs[tx]) sum += pixels[sy * width + sx] * wy * wx;
      out[ty * targetWidth + tx] = Math.floor((2 * sum + area) / (2 * area));
    }
  }
  return out;
}

/**
 * For each of `target` cells over `source` pixels: the [source index, overlap] pairs it covers, the overlap in
 * units of 1/target of a source pixel (target cell t spans units [t·source, (t+1)·source), source pixel s
 * spans [s·target, (s+1)·target)).
 */
function coverage(source: number, target: number): [number, number][][] {
  return Array.from({ length: target }, (_, t) => {
    const begin = t * source;
    const end = begin + source;
    const cells: [number, number][] = [];
    for (let s = Math.floor(begin / target); s * target < end; s++) {
      cells.push([s, Math.min(end, (s + 1) * target) - Math.max(begin, s * target)]);
    }
    return cells;
  });
}

/**
 * An image file as the model's input: read, resized to the model's square input when its size differs,
 * with a notice for each thing the user may not expect (resized, alpha read as ink, empty, dark on light).
 */
export function imageInput(path: string, inputSize: number): GrayImage & { notices: string[] } {
  const read = readImage(path);
  const notices = [...read.notices];
  let { pixels, width, height } = read;
  if (pixels.length !== inputSize) {
    const side = Math.round(Math.sqrt(inputSize));
    if (side * side !== inputSize) {
      throw new UserError(
        `${path}: ${width}×${height} = ${pixels.length} pixels, but the model's first layer has ${inputSize} inputs, not a square image to resize to`,
      );
    }
    pixels = resizeArea(read, side, side);
    const stretched = width === height ? '' : ' (not square: stretched)';
    notices.push(`${path}: resized from ${width}×${height} to ${side}×${side} by area averaging${stretched}`);
    width = height = side;
  }
  const first = pixels[0];
  if (pixels.every((p) => p === first)) {
    notices.push(`${path}: every pixel is ${first}: the image is empty, so the prediction means nothing`);
  } else if (pixels.reduce((sum, p) => sum + p, 0) / pixels.length > 127) {
    notices.push(`${path} looks dark on light; MNIST digits are light on black (invert the image)`);
  }
  return { pixels, width, height, notices };
}
