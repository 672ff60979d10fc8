/**
 * A compact validator for the subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that
 * gateway/web/openapi-schemas.ts uses: $ref (local), type (one or a list; "integer", "null"),
 * properties, required, additionalProperties (boolean or schema), items, enum, const, oneOf,
 * anyOf, minimum, maximum, exclusiveMinimum, minLength, maxLength, minItems. Annotations
 * (description, format, default, examples, x-*) are ignored; any other keyword throws, so the
 * document cannot use a constraint this validator would silently skip.
 *
 * @example
 *   const errors = validate(schema, body, (ref) => resolvePointer(doc, ref));
 *   assert.deepEqual(errors, []);
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['description', 'format', 'default', 'examples', 'title', 'deprecated', 'readOnly', 'writeOnly']);
const KEYWORDS = new Set(['$ref', 'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'oneOf', 'anyOf', 'minimum', 'maximum', 'exclusiveMinimum', 'minLength', 'maxLength', 'minItems']);

/** Resolves a local reference such as `#/components/schemas/Error` within `root`. */
export function resolvePointer(root: unknown, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`only local references are supported: ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`unresolvable reference ${ref}`);
  }
  return node as Schema;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  if (type === 'integer') return Number.isInteger(value);
  if (type === 'number') return typeof value === 'number' && Number.isFinite(value);
  return typeOf(value) === type;
}

/** Every violation of `schema` by `value`, as "path: problem" lines; empty when valid. */
export function validate(schema: Schema, value: unknown, resolve: (ref: string) => Schema, path = '$'): string[] {
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key) && !key.startsWith('x-')) throw new Error(`${path}: the validator does not support the keyword '${key}'`);
  }
  if (typeof schema.$ref === 'string') return validate(resolve(schema.$ref), value, resolve, path);
  const errors: string[] = [];
  const fail = (problem: string): void => void errors.push(`${path}: ${problem}`);

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => hasType(value, t))) return [`${path}: expected ${types.join(' or ')}, got ${typeOf(value)}`];
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => e === value)) fail(`${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && schema.const !== value) fail(`expected ${JSON.stringify(schema.const)}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`${value} > maximum ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) fail(`${value} ≤ exclusive minimum ${schema.exclusiveMinimum}`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) fail(`longer than ${schema.maxLength}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (schema.items !== undefined) value.forEach((item, i) => errors.push(...validate(schema.items as Schema, item, resolve, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) if (!(name in object)) fail(`missing required property '${name}'`);
    for (const [name, item] of Object.entries(object)) {
      if (properties[name] !== undefined) errors.push(...validate(properties[name], item, resolve, `${path}.${name}`));
      else if (schema.additionalProperties === false) fail(`unexpected property '${name}'`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...validate(schema.additionalProperties as Schema, item, resolve, `${path}.${name}`));
    }
  }
  if (schema.oneOf !== undefined) {
    const matching = (schema.oneOf as Schema[]).filter((s) => validate(s, value, resolve, path).length === 0).length;
    if (matching !== 1) fail(`matches ${matching} of the oneOf alternatives, not exactly one`);
  }
  if (schema.anyOf !== undefined && !(schema.anyOf as Schema[]).some((s) => validate(s, value, resolve, path).length === 0)) fail('matches none of the anyOf alternatives');
  return errors;
}
