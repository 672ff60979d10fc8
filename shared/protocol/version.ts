/**
 * Model versions are integers (TF-Serving's are int64; the repository's version folders are 1–9
 * digits): "01" and "1" name the same version. A version that is not all digits is kept as it is,
 * so it still gets its "no such version" answer.
 *
 * @example
 *   canonicalVersion('007') // '7'
 *   canonicalVersion('v2')  // 'v2'
 */
export function canonicalVersion(version: string): string {
  return /^\d+$/.test(version) ? version.replace(/^0+(?=\d)/, '') : version;
}
