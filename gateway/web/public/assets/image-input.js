/**
 * Image upload for image models (e.g. cifar10: [N,3,32,32] RGB planes in [0,1]): a file input and a
 * drop zone; the image is decoded by the browser (createImageBitmap), centre-cropped to the model's
 * aspect ratio, resized with smoothing to the model's height x width, and written as floats /255,
 * planar (CHW) or interleaved (HWC) as the input's shape says.
 */
import { pixelsOf, resample } from './resample.js';

/**
 * The layout of an image input, or undefined when the input is not an FP32 RGB image:
 * [N,3,H,W] → 'chw', [N,H,W,3] → 'hwc'.
 */
export function imageLayout(input) {
  if (input.datatype !== 'FP32' || input.shape.length !== 4) return undefined;
  const [, a, b, c] = input.shape;
  if (a === 3 && b > 0 && c > 0) return { order: 'chw', height: b, width: c };
  if (c === 3 && a > 0 && b > 0) return { order: 'hwc', height: a, width: b };
  return undefined;
}

/**
 * Decodes `file` and returns `{ data: Float32Array, preview: canvas }` for the layout.
 * Throws an Error with a user-facing message when the file is not a decodable image.
 */
export async function imageToTensor(file, layout) {
  if (!file.type.startsWith('image/')) throw new Error(`${file.name || 'the file'} is not an image (${file.type || 'unknown type'})`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`${file.name || 'the file'} could not be decoded as an image`);
  }
  const { width, height } = layout;
  const canvas = resample(bitmap, centreCrop(bitmap.width, bitmap.height, width / height), width, height);
  bitmap.close();
  const rgba = pixelsOf(canvas);
  const plane = width * height;
  const data = new Float32Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = rgba[i * 4 + c] / 255;
      if (layout.order === 'chw') data[c * plane + i] = v;
      else data[i * 3 + c] = v;
    }
  }
  return { data, preview: canvas };
}

/** The largest centred rectangle of the given aspect ratio (width / height) inside w x h. */
export function centreCrop(w, h, aspect) {
  if (w / h > aspect) {
    const width = Math.round(h * aspect);
    return { x: Math.floor((w - width) / 2), y: 0, width, height: h };
  }
  const height = Math.round(w / aspect);
  return { x: 0, y: Math.floor((h - height) / 2), width: w, height };
}

/**
 * Wires a file input and a drop zone: `onFile(file)` for the chosen or dropped file. The drop zone
 * is a <label> for the file input, so it is also reachable and operable by keyboard.
 */
export function bindImagePicker(fileInput, dropZone, onFile) {
  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (file) onFile(file);
  });
  dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    const file = event.dataTransfer?.files?.[0];
    if (file) onFile(file);
  });
}
