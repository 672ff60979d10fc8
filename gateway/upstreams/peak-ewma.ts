/**
 * Peak-EWMA of response latency: the latency figure the peak-EWMA balancer multiplies by load.
 *
 * Semantics are tower's `load/peak_ewma.rs` `RttEstimate::update` (itself Finagle's
 * `loadbalancer/PeakEwma.scala`):
 * - a sample above the estimate replaces it at once (the *peak*), so a worker that slows down is
 *   shunned from its very next response;
 * - a sample at or below it is blended in with weight `1 − w`, `w = exp(−elapsed / decayMs)`, where
 *   `elapsed` is the time since the previous sample; so recovery is cautious, and the estimate
 *   moves halfway to a run of lower samples after `decayMs · ln 2` (the half-life).
 *
 * Reading: tower and Finagle also decay the estimate *towards zero* on every load read (an update
 * with a 0 sample), so a worker that got no traffic for a while looks cheap again and is probed
 * afresh instead of being starved by an old peak. `value(now)` applies that same decay,
 * `estimate · exp(−(now − lastSample) / decayMs)`, but without storing it: reading never changes
 * the state, so the figure does not depend on how often balancers look. (The one consequence: a
 * sample is compared with, and blended into, the estimate as it stood at the previous sample — what
 * tower does when nothing read the load in between.)
 *
 * Before the first sample `value` is `initialMs` (tower's `default_rtt`; 0 by default, which the
 * balancers read as "no sample yet") and does not decay; the first sample replaces it outright,
 * as it is a measurement and `initialMs` only a guess.
 *
 * Pure: time is passed in (monotonic ms), nothing is read from a clock.
 *
 * @example
 *   const latency = new PeakEwma({ decayMs: 10_000 });
 *   latency.observe(12, performance.now()); // on each response
 *   latency.value(performance.now());        // what the balancer reads
 */
export interface PeakEwmaOptions {
  /** Mean lifetime of the estimate (tower `decay`); the half-life is `decayMs · ln 2`. */
  decayMs: number;
  /** Estimate before any sample (tower `default_rtt`); default 0. */
  initialMs?: number;
}

export class PeakEwma {
  readonly #decayMs: number;
  #estimateMs: number;
  /** Time of the last sample; undefined until the first one. */
  #sampledAt: number | undefined;

  constructor(options: PeakEwmaOptions) {
    const { decayMs, initialMs = 0 } = options;
    if (!(Number.isFinite(decayMs) && decayMs > 0)) throw new RangeError(`PeakEwma: decayMs must be a positive number, got ${decayMs}`);
    if (!(Number.isFinite(initialMs) && initialMs >= 0)) throw new RangeError(`PeakEwma: initialMs must be a non-negative number, got ${initialMs}`);
    this.#decayMs = decayMs;
    this.#estimateMs = initialMs;
  }

  /** Whether any sample has been observed. */
  get sampled(): boolean {
    return this.#sampledAt !== undefined;
  }

  /**
   * Records one response latency `rttMs` observed at `nowMs`. It runs on every lease release, so it
   * never throws: a negative sample (a clock stepping back) counts as 0, as tower's
   * `saturating_duration_since` does, and a non-finite one is ignored rather than poisoning the estimate.
   */
  observe(rttMs: number, nowMs: number): void {
    if (!Number.isFinite(rttMs) || !Number.isFinite(nowMs)) return;
    const rtt = Math.max(0, rttMs);
    const last = this.#sampledAt;
    if (last === undefined || rtt > this.#estimateMs) {
      this.#estimateMs = rtt;
    } else {
      // A clock that steps back counts as no time elapsed (tower: `saturating_duration_since`).
      const w = Math.exp(-Math.max(0, nowMs - last) / this.#decayMs);
      this.#estimateMs = this.#estimateMs * w + rtt * (1 - w);
    }
    this.#sampledAt = last === undefined ? nowMs : Math.max(last, nowMs);
  }

  /** The estimate at `nowMs`, decayed towards 0 since the last sample. */
  value(nowMs: number): number {
    const last = this.#sampledAt;
    if (last === undefined) return this.#estimateMs;
    return this.#estimateMs * Math.exp(-Math.max(0, nowMs - last) / this.#decayMs);
  }
}
