/**
 * Drain aggregation for `--workers`: the primary's Router reports a node drained (and the registry or an
 * admin delete then removes it) only when every worker that was serving when the drain began has said it
 * has no request in flight to the node, or has exited (worker-cluster.ts feeds it).
 *
 * A drain starts with the change (sequence number `since`) that made the node draining; a worker's
 * report counts only if it had applied that change (its reported sequence number ≥ `since`), so a late
 * report from an earlier drain of the same node never ends a new one. Any other news about the node
 * (active again, removed) ends the drain.
 */
import type { NodeState, Router, TableChange } from '@switchyard/router';

interface PendingDrain {
  readonly key: string;
  readonly address: string;
  /** Sequence number of the change that made the node draining. */
  readonly since: number;
  /** Workers that have not reported the node idle yet. */
  readonly waiting: Set<number>;
}

export class WorkerDrains {
  private readonly router: Router;
  private readonly drains = new Map<string, PendingDrain>();

  /** Installs itself as `router`'s remote drain gate. */
  constructor(router: Router) {
    this.router = router;
    router.setRemoteDrainGate((key, address) => (this.drains.get(id(key, address))?.waiting.size ?? 0) > 0);
  }

  /** A change was made (number `seq`) while `serving` workers hold the table. */
  track(change: TableChange, seq: number, serving: Iterable<number>): void {
    let key: string;
    let address: string;
    let state: NodeState;
    switch (change.op) {
      case 'node':
        ({ key, address, state } = change.node);
        break;
      case 'state':
        ({ key, address, state } = change);
        break;
      case 'remove':
        this.drains.delete(id(change.key, change.address));
        return;
      default:
        return;
    }
    const nodeId = id(key, address);
    if (state !== 'draining') {
      this.drains.delete(nodeId);
      return;
    }
    if (this.drains.has(nodeId)) return;
    this.drains.set(nodeId, { key, address, since: seq, waiting: new Set(serving) });
  }

  /** Worker `worker`, having applied changes up to `seq`, has no request in flight to the node. */
  drained(worker: number, key: string, address: string, seq: number): void {
    const drain = this.drains.get(id(key, address));
    if (drain === undefined || seq < drain.since || !drain.waiting.delete(worker)) return;
    if (drain.waiting.size === 0) this.router.remoteDrained(key, address);
  }

  /** Worker `worker` exited: its requests are gone with it. */
  workerGone(worker: number): void {
    for (const drain of this.drains.values()) {
      if (drain.waiting.delete(worker) && drain.waiting.size === 0) this.router.remoteDrained(drain.key, drain.address);
    }
  }
}

function id(key: string, address: string): string {
  return `${key}\u0000${address}`;
}
