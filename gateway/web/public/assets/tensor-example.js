/**
 * A valid example request for any model, generated from its V2 metadata: variable dims (-1) become
 * 1, and each element gets a neutral value of the input's datatype, so "Run" works before the user
 * edits anything and the JSON shows the exact form the model expects.
 */

const EXAMPLE_VALUE = {
  BOOL: false,
  BYTES: 'text',
  FP16: 0,
  FP32: 0,
  FP64: 0,
};

/** The neutral element of a V2 datatype (0 for every integer type). */
export function exampleValue(datatype) {
  return EXAMPLE_VALUE[datatype] ?? 0;
}

/** A concrete shape: every variable dimension (-1) becomes 1. */
export function concreteShape(shape) {
  return shape.map((d) => (d < 0 ? 1 : d));
}

export function elementCount(shape) {
  return shape.reduce((n, d) => n * d, 1);
}

/** Elements in an example are capped so a huge input does not freeze the editor. */
const MAX_EXAMPLE_ELEMENTS = 100_000;

/** `{"inputs":[...]}` for the model's metadata, one example tensor per input. */
export function exampleRequest(metadata) {
  return {
    inputs: metadata.inputs.map((input) => {
      const shape = concreteShape(input.shape);
      const count = elementCount(shape);
      if (count > MAX_EXAMPLE_ELEMENTS) throw new Error(`input ${input.name} has ${count} elements: too many for an example`);
      return { name: input.name, datatype: input.datatype, shape, data: new Array(count).fill(exampleValue(input.datatype)) };
    }),
  };
}

/**
 * Compact JSON: one line per input tensor, and each `data` array on one line, since a 784-element
 * array would otherwise take 784 lines.
 */
export function formatRequest(request) {
  const inputs = request.inputs.map((t) => `    ${JSON.stringify(t)}`).join(',\n');
  const rest = Object.entries(request).filter(([k]) => k !== 'inputs').map(([k, v]) => `,\n  ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join('');
  return `{\n  "inputs": [\n${inputs}\n  ]${rest}\n}`;
}
