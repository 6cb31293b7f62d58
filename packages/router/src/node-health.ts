/**
 * Hooks between node health (passive ejection, owned by the balancing code) and the operator surface.
 * The router owns one NodeHealthHooks (`router.health`):
 *  - the ejection logic calls `emit({ type: 'ejected' | 'readmitted', ... })` when it takes a node out of
 *    rotation or lets it back; the event log, the metrics (`switchyard_ejections_total`) and the
 *    dashboard see it;
 *  - it sets `describe` so that `GET /v1/vhosts/:host` and `GET /v1/route` can show each node's ejection
 *    state (undefined = the node is not ejected / no ejection logic installed).
 * Listeners run synchronously; one that throws is ignored (it cannot break the request path).
 */

export interface EjectionState {
  readonly ejected: boolean;
  /** ms timestamp (router clock) until which the node stays out, when ejected. */
  readonly until?: number;
  /** Why (e.g. `consecutive-failures`, `error-rate`). */
  readonly reason?: string;
  /** Any further detail the ejection logic wants to show (failure counts, thresholds...). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface HealthEvent {
  readonly type: 'ejected' | 'readmitted';
  readonly key: string;
  readonly address: string;
  readonly reason?: string;
  /** For 'ejected': ms timestamp (router clock) when the node may be readmitted. */
  readonly until?: number;
}

export type HealthListener = (event: HealthEvent) => void;

export class NodeHealthHooks {
  /** Ejection state of (key, address) for the admin API; replaced by the ejection logic. */
  describe: (key: string, address: string) => EjectionState | undefined = () => undefined;
  private listeners: readonly HealthListener[] = [];
  private ejectedCount = 0;
  private readmittedCount = 0;

  /** Nodes ejected since start. */
  get ejections(): number {
    return this.ejectedCount;
  }

  /** Nodes readmitted since start. */
  get readmissions(): number {
    return this.readmittedCount;
  }

  /** Called by the ejection logic. */
  emit(event: HealthEvent): void {
    if (event.type === 'ejected') this.ejectedCount++;
    else this.readmittedCount++;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // a listener failure must not reach the request path
      }
    }
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: HealthListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }
}
