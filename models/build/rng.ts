/**
 * Seeded randomness for the model builds: every weight, split and shuffle comes from here, so
 * `npm run models` writes byte-identical files on every run.
 *
 * mulberry32 (Tommy Ettinger, public domain; see https://gist.github.com/tommyettinger/46a874533244883189143505d203312c)
 * is a 32-bit state generator: tiny, fast and good enough for initialisation and shuffling.
 * Normals use the Box-Muller transform (Box & Muller, 1958).
 *
 * @example
 *   const rng = createRng(42);
 *   rng.next();        // uniform in [0, 1)
 *   rng.normal();      // standard normal
 *   rng.shuffle([1, 2, 3]);
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (mean 0, variance 1). */
  normal(): number;
  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[];
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  // Box-Muller yields normals in pairs; keep the second for the next call.
  let spare: number | undefined;

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const int = (n: number): number => Math.floor(next() * n);

  return {
    next,
    int,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal() {
      if (spare !== undefined) {
        const value = spare;
        spare = undefined;
        return value;
      }
      // 1 - next() lies in (0, 1], so the log is finite.
      const radius = Math.sqrt(-2 * Math.log(1 - next()));
      const angle = 2 * Math.PI * next();
      spare = radius * Math.sin(angle);
      return radius * Math.cos(angle);
    },
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const tmp = items[i] as (typeof items)[number];
        items[i] = items[j] as (typeof items)[number];
        items[j] = tmp;
      }
      return items;
    },
  };
}
