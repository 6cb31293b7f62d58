/**
 * TableChangeLog: the info line per subscription table change (`node added`, `node draining`,
 * `node expired`...), bounded. A restart of a router serving a million hosts re-adds every one of them,
 * and a partition expires them all: one pino line each cost more CPU than the change itself (≈10 µs vs
 * ≈5 µs, measured) and floods the log. So the first `perSecond` changes of each second (default 20) are
 * logged one by one as before; the rest of that second are counted, and one summary line per second
 * (`table changes not logged one by one`, counts by event type) follows, at most a second later.
 * 'refreshed' events are never logged (they are the steady state).
 *
 * Time comes from the injected clock (ms); the summary timer is unref'd; `close()` flushes it.
 */
import type { TableEvent } from '@switchyard/subscription-server';
import type { Logger } from 'pino';

export class TableChangeLog {
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #perSecond: number;
  #second = Number.NaN;
  #logged = 0;
  #suppressed: Partial<Record<TableEvent['type'], number>> = {};
  #suppressedTotal = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, clock: () => number, perSecond = 20) {
    this.#logger = logger;
    this.#clock = clock;
    this.#perSecond = perSecond;
  }

  record(event: TableEvent): void {
    if (event.type === 'refreshed') return;
    const second = Math.floor(this.#clock() / 1000);
    if (second !== this.#second) {
      this.flush();
      this.#second = second;
      this.#logged = 0;
    }
    if (this.#logged < this.#perSecond) {
      this.#logged++;
      const node = event.node;
      this.#logger.info(
        { component: 'table', event: event.type, host: node.key, node: node.address },
        `node ${event.type}`,
      );
      return;
    }
    this.#suppressed[event.type] = (this.#suppressed[event.type] ?? 0) + 1;
    this.#suppressedTotal++;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), 1000);
      this.#timer.unref();
    }
  }

  /** Writes the pending summary line, if any. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#suppressedTotal === 0) return;
    this.#logger.info(
      { component: 'table', notLogged: this.#suppressedTotal, byEvent: this.#suppressed },
      'table changes not logged one by one',
    );
    this.#suppressed = {};
    this.#suppressedTotal = 0;
  }

  /** Flushes; safe twice. */
  close(): void {
    this.flush();
  }
}
