/**
 * A drawing pad for digit models, and the preprocessing that turns a drawing into what an
 * MNIST-trained model saw in training (models/build/mnist.ts): 28x28 grey levels in [0,1], ink = 1,
 * background = 0, the digit fitted into a 20x20 box preserving its aspect ratio and centred in the
 * 28x28 field by its centre of mass. That is how the MNIST digits were made (LeCun et al.,
 * http://yann.lecun.com/exdb/mnist/: "normalized to fit in a 20x20 pixel box while preserving their
 * aspect ratio … centered in a 28x28 image by computing the center of mass of the pixels").
 *
 * Pointer events cover mouse, pen and touch alike; the canvas has touch-action: none so a finger
 * draws instead of scrolling the page.
 */
import { pixelsOf, resample } from './resample.js';

export const SIDE = 28;
/** The digit's longer side after scaling, in pixels of the 28x28 field. */
export const BOX = 20;
/** Drawing surface resolution (CSS may show it smaller on a phone). */
export const PAD_SIZE = 280;
/**
 * Brush width on the 280 px pad: a digit drawn about 200 px tall becomes 20 px, so this is a
 * 1.8 px stroke at 28x28, close to MNIST's pen strokes. Thicker brushes fill the loops of small
 * 0s, 6s and 8s (the held-out digits traced with a 26 px brush lost 2 of 20; with 18, none).
 */
export const BRUSH_WIDTH = 18;
/**
 * Where MNIST puts the centre of mass: pixel (14, 14) by index, i.e. 14.5 in the continuous
 * coordinates used below (pixel i spans [i, i+1)). The held-out digits average 13.9 by index.
 */
const CENTRE = SIDE / 2 + 0.5;

/**
 * Makes `canvas` a drawing pad. Calls `onChange(hasInk)` after each stroke and on clear.
 *
 * @example
 *   const pad = createDrawingPad(byId('digit-pad'), (hasInk) => predict.disabled = !hasInk);
 *   const pixels = toMnistPixels(pad.canvas); // Float32Array(784) or undefined if blank
 */
export function createDrawingPad(canvas, onChange = () => {}) {
  canvas.width = PAD_SIZE;
  canvas.height = PAD_SIZE;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.lineWidth = BRUSH_WIDTH;
  ctx.strokeStyle = '#111';
  ctx.fillStyle = '#111';
  let last;
  let hasInk = false;

  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return { x: ((event.clientX - rect.left) / rect.width) * PAD_SIZE, y: ((event.clientY - rect.top) / rect.height) * PAD_SIZE };
  };
  const dot = (p) => {
    ctx.beginPath();
    ctx.arc(p.x, p.y, BRUSH_WIDTH / 2, 0, Math.PI * 2);
    ctx.fill();
  };
  canvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    dot(last);
    hasInk = true;
  });
  canvas.addEventListener('pointermove', (event) => {
    if (last === undefined) return;
    const next = point(event);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(next.x, next.y);
    ctx.stroke();
    last = next;
  });
  const end = () => {
    if (last === undefined) return;
    last = undefined;
    onChange(hasInk);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  return {
    canvas,
    get hasInk() {
      return hasInk;
    },
    clear() {
      ctx.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
      hasInk = false;
      onChange(false);
    },
  };
}

/**
 * The drawing as the model's input: Float32Array(784), row-major, or undefined when nothing is
 * drawn. Ink is read from the alpha channel, so the stroke colour does not matter.
 */
export function toMnistPixels(canvas) {
  const box = inkBounds(canvas);
  if (box === undefined) return undefined;

  // Longer side to BOX px, aspect kept; the browser's smoothing does the anti-aliasing MNIST has.
  const scale = BOX / Math.max(box.width, box.height);
  const w = Math.max(1, Math.round(box.width * scale));
  const hgt = Math.max(1, Math.round(box.height * scale));
  const alpha = pixelsOf(resample(canvas, box, w, hgt));

  let mass = 0;
  let mx = 0;
  let my = 0;
  const grey = new Float32Array(w * hgt);
  for (let i = 0; i < grey.length; i++) {
    const v = alpha[i * 4 + 3] / 255;
    grey[i] = v;
    mass += v;
    mx += v * ((i % w) + 0.5);
    my += v * (Math.floor(i / w) + 0.5);
  }
  // Whole-pixel shift that puts the centre of mass at the field's centre, as MNIST did.
  const dx = Math.round(CENTRE - mx / mass);
  const dy = Math.round(CENTRE - my / mass);
  const out = new Float32Array(SIDE * SIDE);
  let peak = 0;
  for (let y = 0; y < hgt; y++) {
    const ty = y + dy;
    if (ty < 0 || ty >= SIDE) continue;
    for (let x = 0; x < w; x++) {
      const tx = x + dx;
      if (tx < 0 || tx >= SIDE) continue;
      const v = grey[y * w + x];
      out[ty * SIDE + tx] = v;
      if (v > peak) peak = v;
    }
  }
  // MNIST strokes reach full intensity; a faint drawing is stretched to [0, 1] the same way.
  if (peak > 0) for (let i = 0; i < out.length; i++) out[i] = Math.min(1, out[i] / peak);
  return out;
}

/** The bounding box of every pixel with any ink, or undefined for a blank pad. */
function inkBounds(canvas) {
  const { width, height } = canvas;
  const data = pixelsOf(canvas);
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4 + 3] === 0) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  return maxX < 0 ? undefined : { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/** Paints 28x28 grey levels onto a preview canvas (ink dark on white, as drawn). */
export function paintPreview(canvas, pixels) {
  canvas.width = SIDE;
  canvas.height = SIDE;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const level = 255 - Math.round((pixels?.[i] ?? 0) * 255);
    image.data.set([level, level, level, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}

/** True when a model input looks like an MNIST image: FP32 with 28x28 (optionally 1 channel) per item. */
export function isDigitInput(input) {
  if (input.datatype !== 'FP32') return false;
  const item = input.shape.slice(1).join('x');
  return item === '1x28x28' || item === '28x28' || item === '784';
}
