import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { readImage, resizeArea } from '../src/inference/image.js';
import { predict } from '../src/inference/predict.js';
import { exportSafetensors } from '../src/model-io/export.js';
import { initHeNormal, modelLayout } from '../src/model/layout.js';
import { Rng } from '../src/random/rng.js';
import { runCli, tempDir, userErrorOf } from './helpers.js';

const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, only: 'test', testLimit: 10 });
const digit = mnist.test.images.subarray(0, 784); // a 7, white on black

/** A small untrained model: the notices and the resizing do not depend on what it learned. */
function model(layers = [784, 16, 10]): { params: Float32Array; layers: number[] } {
  const layout = modelLayout(layers);
  const params = new Float32Array(layout.paramCount);
  initHeNormal(layout, params, new Rng(5));
  return { params, layers };
}

function writePng(
  path: string,
  width: number,
  height: number,
  rgba: (i: number) => [number, number, number, number],
): void {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set(rgba(i), i * 4);
  writeFileSync(path, PNG.sync.write(png));
}

function writePgm(path: string, width: number, height: number, pixels: Uint8Array): void {
  writeFileSync(path, Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), Buffer.from(pixels)]));
}

/**
 * Area averaging computed the slow, obvious way: cut every source pixel into tw × th equal units, so target pixel
 * (tx, ty) is exactly the units [tx·w, (tx+1)·w) × [ty·h, (ty+1)·h); average them, round halves up.
 */
function bruteForceArea(pixels: Uint8Array, w: number, h: number, tw: number, th: number): number[] {
  const out: number[] = [];
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      let sum = 0;
      for (let v = ty * h; v < (ty + 1) * h; v++)
        for (let u = tx * w; u < (tx + 1) * w; u++) sum += pixels[Math.floor(v / th) * w + Math.floor(u / tw)];
      out.push(Math.floor(sum / (w * h) + 0.5));
    }
  }
  return out;
}

describe('resizeArea (box filter over the exact source area)', () => {
  it('gives hand-computed pixels: a third of a pixel at the seam, 2×2 blocks averaged', () => {
    // 3 → 2: target 0 covers pixel 0 and half of pixel 1: (0·1 + 90·0.5) / 1.5 = 30; target 1: (90·0.5 + 180·1) / 1.5 = 150.
    expect(Array.from(resizeArea({ pixels: Uint8Array.of(0, 90, 180), width: 3, height: 1 }, 2, 1))).toEqual([30, 150]);
    // 4×4 → 2×2: each 2×2 block's mean (the last one 2.5, rounded up).
    const block = Uint8Array.of(0, 4, 8, 8, 4, 8, 8, 8, 1, 2, 1, 2, 3, 4, 4, 3);
    expect(Array.from(resizeArea({ pixels: block, width: 4, height: 4 }, 2, 2))).toEqual([4, 8, 3, 3]);
    // 1 → 3 (enlarging): every target pixel lies inside the one source pixel.
    expect(Array.from(resizeArea({ pixels: Uint8Array.of(77), width: 1, height: 1 }, 3, 1))).toEqual([77, 77, 77]);
  });

  it('equals the brute-force average of exact sub-pixel units for shrinking, enlarging and stretching', () => {
    const rng = new Rng(11);
    for (const [w, h, tw, th] of [
      [56, 56, 28, 28],
      [30, 20, 28, 28],
      [5, 7, 3, 2],
      [100, 37, 28, 28],
      [13, 13, 28, 28],
    ]) {
      const pixels = Uint8Array.from({ length: w * h }, () => rng.nextInt(256));
      expect(Array.from(resizeArea({ pixels, width: w, height: h }, tw, th)), `${w}×${h} → ${tw}×${th}`).toEqual(
        bruteForceArea(pixels, w, h, tw, th),
      );
    }
  });
});

/** A temp directory holding the small model as safetensors, and its prediction for the MNIST digit itself. */
function setup(): { dir: string; modelPath: string; ref: ReturnType<typeof predict> } {
  const dir = tempDir();
  const modelPath = join(dir, 'model.safetensors');
  exportSafetensors(model(), modelPath);
  return { dir, modelPath, ref: predict(modelPath, { index: 0 }) };
}

describe('predict --image: resized to the model, with notices for what a user may not expect', {
  timeout: 120_000,
}, () => {
  it('a larger image is resized by area averaging, with a notice from what size to what size', () => {
    const { dir, modelPath, ref } = setup();
    // The digit at twice the size (each pixel a 2×2 block) averages back to the digit exactly.
    const big = join(dir, 'big.png');
    writePng(big, 56, 56, (i) => {
      const v = digit[Math.floor(Math.floor(i / 56) / 2) * 28 + Math.floor((i % 56) / 2)];
      return [v, v, v, 255];
    });
    const p = predict(modelPath, { image: big });
    expect(Array.from(p.pixels)).toEqual(Array.from(digit));
    expect(p.probabilities).toEqual(ref.probabilities);
    expect(p.notices).toEqual([`${big}: resized from 56×56 to 28×28 by area averaging`]);

    const r = runCli(['predict', modelPath, '--image', big], { timeout: 110_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`lockstep: notice: ${big}: resized from 56×56 to 28×28 by area averaging\n`);
    expect(r.stdout).toContain(`predicted ${ref.predicted}`);

    const wide = join(dir, 'wide.pgm');
    writePgm(
      wide,
      40,
      20,
      new Uint8Array(800).map((_, i) => (i % 40 >= 10 && i % 40 < 30 && i >= 200 && i < 600 ? 200 : 0)),
    );
    expect(predict(modelPath, { image: wide }).notices).toEqual([
      `${wide}: resized from 40×20 to 28×28 by area averaging (not square: stretched)`,
    ]);
  });

  it('an empty image (all one value) gets a notice, and still an answer', () => {
    const { dir, modelPath } = setup();
    const black = join(dir, 'black.pgm');
    writePgm(black, 28, 28, new Uint8Array(784));
    const r = runCli(['predict', modelPath, '--image', black, '--json'], { timeout: 110_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `lockstep: notice: ${black}: every pixel is 0: the image is empty, so the prediction means nothing\n`,
    );
    const json = JSON.parse(r.stdout);
    expect(json.probabilities).toHaveLength(10);
    expect(json).not.toHaveProperty('notices'); // notices go to stderr only

    const white = join(dir, 'white.png');
    writePng(white, 28, 28, () => [255, 255, 255, 255]);
    expect(predict(modelPath, { image: white }).notices).toEqual([
      `${white}: every pixel is 255: the image is empty, so the prediction means nothing`,
    ]);
  });

  it('a dark digit on a light background gets the invert notice', () => {
    const { dir, modelPath } = setup();
    const inverted = join(dir, 'inverted.pgm');
    writePgm(
      inverted,
      28,
      28,
      digit.map((v) => 255 - v),
    );
    const r = runCli(['predict', modelPath, '--image', inverted], { timeout: 110_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `lockstep: notice: ${inverted} looks dark on light; MNIST digits are light on black (invert it first: 255 − each pixel)\n`,
    );
    // The digit itself, as MNIST draws it, gets no notice.
    const plain = join(dir, 'plain.pgm');
    writePgm(plain, 28, 28, digit);
    expect(predict(modelPath, { image: plain }).notices).toEqual([]);
  });

  it('a digit drawn in one colour on a transparent background: its alpha is the ink, whatever the colour', () => {
    const { dir, modelPath, ref } = setup();
    // Black ink (RGB 0) on a fully transparent background: over black it would be an empty image.
    for (const [name, ink] of [
      ['black-ink.png', 0],
      ['blue-ink.png', 30],
    ] as const) {
      const path = join(dir, name);
      writePng(path, 28, 28, (i) => [ink === 0 ? 0 : 10, ink === 0 ? 0 : 20, ink === 0 ? 0 : 60, digit[i]]);
      const p = predict(modelPath, { image: path });
      expect(Array.from(p.pixels)).toEqual(Array.from(digit));
      expect(p.probabilities).toEqual(ref.probabilities);
      expect(p.notices).toEqual([
        `${path}: one colour on a transparent background: its opacity is read as the ink (white on black)`,
      ]);
    }
    // Nothing drawn at all: alpha 0 everywhere is an empty image.
    const clear = join(dir, 'clear.png');
    writePng(clear, 28, 28, () => [0, 0, 0, 0]);
    const r = runCli(['predict', modelPath, '--image', clear], { timeout: 110_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `lockstep: notice: ${clear}: every pixel is 0: the image is empty, so the prediction means nothing\n`,
    );
  });

  it('a PNG of several colours with transparency is composited over black', () => {
    const { dir } = setup();
    const path = join(dir, 'mixed.png');
    // White where the digit is, half-transparent red elsewhere: gray (255+0+0)/3 = 85 at alpha 128 → 43.
    writePng(path, 28, 28, (i) => (digit[i] > 0 ? [255, 255, 255, 255] : [255, 0, 0, 128]));
    const image = readImage(path);
    expect(image.notices).toEqual([`${path}: colours on a transparent background: laid over black`]);
    expect(Array.from(image.pixels)).toEqual(Array.from(digit, (v) => (v > 0 ? 255 : 43)));
  });

  it('a digit on a grey background gets a notice naming the background', () => {
    const { dir, modelPath } = setup();
    const grey = join(dir, 'grey.pgm');
    writePgm(
      grey,
      28,
      28,
      Uint8Array.from(digit, (v) => Math.max(v, 100)),
    );
    expect(predict(modelPath, { image: grey }).notices).toEqual([
      `${grey}: its background (the border's mean) is 100, not black; MNIST digits are light on black`,
    ]);
    // Just below the line: none.
    writePgm(
      grey,
      28,
      28,
      Uint8Array.from(digit, (v) => Math.max(v, 47)),
    );
    expect(predict(modelPath, { image: grey }).notices).toEqual([]);
  });

  it('reads any PGM header and maxval, and refuses bad pixels, sizes and other formats in one line naming the file', () => {
    const { dir } = setup();
    const file = (name: string, content: string | Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    const text = (values: string[], header = 'P2\n28 28\n255\n') => `${header}${values.join(' ')}\n`;
    const digits = Array.from(digit, String);
    // Comments anywhere in the header; text and binary; 16 bits and maxval 15 scaled to 0–255.
    expect(Array.from(readImage(file('c.pgm', text(digits, 'P2 # a\n28 # w\n# h next\n28\n255\n'))).pixels)).toEqual(
      Array.from(digit),
    );
    const wide = Buffer.alloc(784 * 2);
    digit.forEach((v, i) => wide.writeUInt16BE(v * 257, 2 * i));
    expect(Array.from(readImage(file('w.pgm', Buffer.concat([Buffer.from('P5 28 28 65535\n'), wide]))).pixels)).toEqual(
      Array.from(digit),
    );
    const four = Array.from(digit, (v) => Math.round((v * 15) / 255));
    expect(Array.from(readImage(file('f.pgm', text(four.map(String), 'P2 28 28 15\n'))).pixels)).toEqual(
      four.map((v) => Math.round((v * 255) / 15)),
    );
    const refused = (path: string) => userErrorOf(() => readImage(path));
    const bad = (at: number, value: string) => text(digits.map((v, i) => (i === at ? value : v)));
    expect(refused(file('a.pgm', bad(5, 'abc')))).toBe(`${dir}/a.pgm: pixel 6 is "abc", not an integer from 0 to 255`);
    expect(refused(file('b.pgm', bad(0, '300')))).toBe(`${dir}/b.pgm: pixel 1 is "300", not an integer from 0 to 255`);
    expect(refused(file('n.pgm', bad(783, '-5')))).toBe(
      `${dir}/n.pgm: pixel 784 is "-5", not an integer from 0 to 255`,
    );
    expect(refused(file('x.pgm', text([...digits, '0', '0', '0'])))).toBe(
      `${dir}/x.pgm: 787 values for 28×28 = 784 pixels`,
    );
    expect(refused(file('t.pgm', text(digits.slice(0, 700))))).toBe(`${dir}/t.pgm: truncated PGM: 700 of 784 pixels`);
    expect(refused(file('z.pgm', 'P5 0 0 255\n'))).toBe(`${dir}/z.pgm: an image of 0×0 pixels: nothing to classify`);
    expect(refused(file('e.png', ''))).toBe(`${dir}/e.png: an empty file, not an image`);
    expect(refused(file('j.png', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16])))).toBe(
      `${dir}/j.png: a JPEG image; lockstep reads PNG and PGM (P2/P5): convert it to PNG`,
    );
    // A PNG whose header claims 100000 × 100000 pixels is refused before anything is decoded.
    const png = new PNG({ width: 1, height: 1 });
    const huge = PNG.sync.write(png);
    huge.writeUInt32BE(100_000, 16);
    huge.writeUInt32BE(100_000, 20);
    expect(refused(file('h.png', huge))).toBe(
      `${dir}/h.png: 100000×100000 pixels; lockstep reads images of at most 50 million pixels (make it smaller)`,
    );
    expect(refused(file('cut.png', PNG.sync.write(png).subarray(0, 40)))).toBe(
      `${dir}/cut.png: corrupt PNG (the file ends early)`,
    );
  });

  it('refuses to resize to a model input that is not a square image', () => {
    const { dir } = setup();
    const path = join(dir, 'small.pgm');
    writePgm(path, 4, 4, new Uint8Array(16).fill(9));
    expect(userErrorOf(() => predict(model([20, 10]), { image: path }))).toBe(
      `${path}: 4×4 = 16 pixels, but the model's first layer has 20 inputs, not a square image to resize to`,
    );
  });
});
