/**
 * Peak-EWMA of one node's response-head latency (Finagle / linkerd "peak EWMA"), in ms on the injected
 * clock. A sample above the current estimate replaces it at once (the estimate chases latency spikes
 * up immediately); a lower sample is blended in with weight `1 - exp(-Δt/τ)`, Δt being the time since
 * the previous sample, so the estimate comes down with time constant τ (default 10 s).
 *
 * Between samples the estimate read by `estimate(now)` also decays toward 0 with the same τ (Finagle
 * does this by observing 0 on every read): a node that was slow once and then got no traffic is tried
 * again eventually, instead of being starved forever by a stale spike. The read does not mutate, so an
 * explain call never changes what the next pick sees.
 */

/** Default decay time constant, ms. */
export const DEFAULT_LATENCY_DECAY_MS = 10_000;

export class PeakEwma {
  private value = 0;
  private stamp = 0;
  /** Samples observed so far; 0 means "never answered" (the balancer treats that case apart). */
  samples = 0;

  /** Records a response-head latency of `sampleMs` observed at `now`. */
  observe(sampleMs: number, now: number, tauMs: number = DEFAULT_LATENCY_DECAY_MS): void {
    const sample = Math.max(sampleMs, 0);
    if (this.samples === 0) {
      this.value = sample;
    } else {
      const elapsed = now > this.stamp ? now - this.stamp : 0;
      const w = Math.exp(-elapsed / tauMs);
      const decayed = this.value * w;
      this.value = sample > decayed ? sample : this.value * w + sample * (1 - w);
    }
    this.stamp = now;
    this.samples++;
  }

  /** The estimate at `now`, ms: the last value decayed toward 0 for the time since the last sample. */
  estimate(now: number, tauMs: number = DEFAULT_LATENCY_DECAY_MS): number {
    if (this.samples === 0) return 0;
    const elapsed = now > this.stamp ? now - this.stamp : 0;
    return elapsed === 0 ? this.value : this.value * Math.exp(-elapsed / tauMs);
  }
}
