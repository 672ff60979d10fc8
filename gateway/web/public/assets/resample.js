/**
 * Resizing for model inputs: draws a region of an image (canvas, ImageBitmap…) into a new canvas
 * of the target size with the browser's high-quality smoothing, which filters when it shrinks, as
 * anti-aliased training images were made, instead of picking every n-th pixel.
 *
 * @example
 *   const small = resample(bitmap, { x: 16, y: 0, width: 64, height: 64 }, 32, 32);
 *   const rgba = small.getContext('2d').getImageData(0, 0, 32, 32).data;
 */
export function resample(source, crop, width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, crop.x, crop.y, crop.width, crop.height, 0, 0, width, height);
  return canvas;
}

/** The RGBA bytes of a whole canvas. */
export function pixelsOf(canvas) {
  return canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, canvas.width, canvas.height).data;
}
