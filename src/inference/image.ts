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

/** The most pixels an image may have: a 48-megapixel photo fits; a decompression bomb does not. */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** Formats that are images but not ones lockstep reads, told apart by their first bytes. */
const OTHER_FORMATS: [string, (b: Buffer) => boolean][] = [
  ['JPEG', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['GIF', (b) => b.subarray(0, 4).toString('latin1') === 'GIF8'],
  ['BMP', (b) => b.subarray(0, 2).toString('latin1') === 'BM'],
  ['WebP', (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP'],
  ['TIFF', (b) => ['II*\0', 'MM\0*'].includes(b.subarray(0, 4).toString('latin1'))],
  ['colour PPM (P3/P6)', (b) => /^P[36]\s/.test(b.subarray(0, 3).toString('latin1'))],
  ['PBM (P1/P4)', (b) => /^P[14]\s/.test(b.subarray(0, 3).toString('latin1'))],
];

/** Refuses an image with no pixels, or too many to read. */
function checkSize(path: string, width: number, height: number): void {
  if (width < 1 || height < 1)
    throw new UserError(`${path}: an image of ${width}×${height} pixels: nothing to classify`);
  if (width * height > MAX_IMAGE_PIXELS)
    throw new UserError(
      `${path}: ${width}×${height} pixels; lockstep reads images of at most ${MAX_IMAGE_PIXELS / 1e6} million pixels (make it smaller)`,
    );
}

/**
 * Reads a grayscale image (RGB is averaged); PGM P2/P5 (any maxval, scaled to 0–255), or PNG. A PNG with
 * transparency is read one of two ways: when its visible pixels are all one colour (a digit drawn on a
 * transparent background), the colour carries nothing and its opacity is the ink (alpha as the pixel value,
 * so the digit comes out white on black, whatever colour it was drawn in); otherwise it is composited over
 * black. `notices` says which.
 */
export function readImage(path: string): GrayImage & { notices: string[] } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err, 'image');
  }
  if (bytes.length === 0) throw new UserError(`${path}: an empty file, not an image`);
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    // The size is in the IHDR chunk, read before decoding so that a huge image is refused at once.
    if (bytes.length < 24) throw new UserError(`${path}: corrupt PNG (the file ends early)`);
    checkSize(path, bytes.readUInt32BE(16), bytes.readUInt32BE(20));
    let png: PNG;
    try {
      png = PNG.sync.read(bytes);
    } catch (err) {
      const why = (err as Error).message;
      throw new UserError(`${path}: corrupt PNG (${/read requests/.test(why) ? 'the file ends early' : why})`);
    }
    return { ...pngGray(png.data, png.width, png.height, path), width: png.width, height: png.height };
  }
  if (/^P[25]\s/.test(bytes.subarray(0, 3).toString('latin1'))) return { ...readPgm(bytes, path), notices: [] };
  const other = OTHER_FORMATS.find(([, is]) => is(bytes));
  if (other) throw new UserError(`${path}: a ${other[0]} image; lockstep reads PNG and PGM (P2/P5): convert it to PNG`);
  throw new UserError(`${path}: not a PNG or PGM (P2/P5) image`);
}

/**
 * A PGM's pixels: the header's width, height and maxval (whitespace apart, a # comment anywhere in it), then
 * the samples, as text (P2) or binary (P5: one byte each, two big-endian bytes above maxval 255), each scaled
 * to 0–255 (rounded; identity at maxval 255).
 */
function readPgm(bytes: Buffer, path: string): GrayImage {
  const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
  const fields: number[] = [];
  let at = 2;
  while (fields.length < 3) {
    while (at < bytes.length && (isSpace(bytes[at]) || bytes[at] === 0x23)) {
      if (bytes[at] === 0x23) while (at < bytes.length && bytes[at] !== 0x0a && bytes[at] !== 0x0d) at++;
      else at++;
    }
    const start = at;
    while (at < bytes.length && bytes[at] >= 0x30 && bytes[at] <= 0x39) at++;
    if (at === start || at - start > 9 || !(at < bytes.length && isSpace(bytes[at])))
      throw new UserError(
        `${path}: corrupt PGM header (its width, height and maxval are not whitespace-separated integers)`,
      );
    fields.push(Number(bytes.subarray(start, at).toString('latin1')));
  }
  at++; // the one whitespace character after maxval
  const [width, height, max] = fields;
  if (max < 1 || max > 65535) throw new UserError(`${path}: PGM maxval ${max}; it must be from 1 to 65535`);
  checkSize(path, width, height);
  const count = width * height;
  const pixels = new Uint8Array(count);
  const scale = (v: number) => (max === 255 ? v : Math.round((v * 255) / max));
  if (bytes[1] === 0x35) {
    const size = max > 255 ? 2 : 1;
    const samples = Math.floor((bytes.length - at) / size);
    if (samples < count) throw new UserError(`${path}: truncated PGM: ${samples} of ${count} pixels`);
    for (let i = 0; i < count; i++) {
      const v = size === 2 ? bytes.readUInt16BE(at + 2 * i) : bytes[at + i];
      if (v > max) throw new UserError(`${path}: pixel ${i + 1} is ${v}, above the PGM's maxval ${max}`);
      pixels[i] = scale(v);
    }
    return { pixels, width, height };
  }
  const values = bytes.subarray(at).toString('latin1').trim().split(/\s+/).filter(Boolean);
  if (values.length < count) throw new UserError(`${path}: truncated PGM: ${values.length} of ${count} pixels`);
  if (values.length > count)
    throw new UserError(`${path}: ${values.length} values for ${width}×${height} = ${count} pixels`);
  values.forEach((value, i) => {
    if (!/^\d{1,5}$/.test(value) || Number(value) > max)
      throw new UserError(`${path}: pixel ${i + 1} is ${JSON.stringify(value)}, not an integer from 0 to ${max}`);
    pixels[i] = scale(Number(value));
  });
  return { pixels, width, height };
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
  return { pixels, notices: transparent ? [`${path}: colours on a transparent background: laid over black`] : [] };
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

/** A border this bright (mean gray level) is a background that is not black: MNIST's borders are 0. */
const GREY_BACKGROUND = 48;

/** The mean of the outermost rows and columns: the background, for a digit drawn in the middle. */
function borderMean(pixels: Uint8Array, width: number, height: number): number {
  let sum = 0;
  let count = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y === 0 || y === height - 1 || x === 0 || x === width - 1) {
        sum += pixels[y * width + x];
        count++;
      }
    }
  }
  return sum / count;
}

/** The notice for an image of one colour, or null. */
export function emptyImageNotice(pixels: Uint8Array, subject: string): string | null {
  const first = pixels[0];
  return pixels.every((p) => p === first)
    ? `${subject}: every pixel is ${first}: the image is empty, so the prediction means nothing`
    : null;
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
  const background = borderMean(pixels, width, height);
  const empty = emptyImageNotice(pixels, path);
  if (empty) {
    notices.push(empty);
  } else if (pixels.reduce((sum, p) => sum + p, 0) / pixels.length > 127 || background > 127) {
    notices.push(`${path} looks dark on light; MNIST digits are light on black (invert it first: 255 − each pixel)`);
  } else if (background >= GREY_BACKGROUND) {
    notices.push(
      `${path}: its background (the border's mean) is ${Math.round(background)}, not black; MNIST digits are light on black`,
    );
  }
  return { pixels, width, height, notices };
}
