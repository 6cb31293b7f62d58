/**
 * `GET /v1/events`: the event log (event-log.ts), two ways on one route.
 *  - WebSocket (`Upgrade: websocket`, read scope): `?since=N` replays the events after N still in the
 *    ring, then streams live ones; `?host=` filters by host key. Every message is one JSON event
 *    `{seq, time, type, host?, node?, source?, reason?, detail?, ...}`; when events after `since` were
 *    already dropped from the ring the first message is `{"type":"truncated","since":N,"oldest":M}`
 *    (re-read the table, then follow). A client that falls behind by more than `maxBufferedBytes`
 *    (1 MiB) is closed with 1013 and a reason naming the `since` to resume from. The server pings every
 *    30 s and drops a client that did not answer the previous ping.
 *    Browsers cannot send an Authorization header on a WebSocket: they may offer the token as the
 *    subprotocol `bearer.<base64url(token)>` next to `switchyard.events.v1` (admin-server.ts reads it).
 *  - plain HTTP GET (scripts): `{ events: [...], last, truncated }` for `?since=N` (default 0),
 *    at most `?limit=` (default 1000) events.
 */
import type { WebSocket } from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { EventsQuery, routeDoc } from './admin-schemas.js';
import type { EventLog, OperatorEvent } from './event-log.js';

export const EVENTS_SUBPROTOCOL = 'switchyard.events.v1';

export interface EventsRouteOptions {
  readonly events: EventLog;
  readonly maxBufferedBytes?: number;
  readonly pingIntervalMs?: number;
}

export function registerEventsRoute(app: FastifyInstance, options: EventsRouteOptions): void {
  const log = options.events;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const pingMs = options.pingIntervalMs ?? 30_000;
  app.route({
    method: 'GET',
    url: '/v1/events',
    schema: routeDoc(
      'Table events: JSON array over HTTP, or a live stream over WebSocket (resumable with since)',
      { querystring: EventsQuery },
      ['events'],
    ),
    handler: async (request) => {
      const q = request.query as z.output<typeof EventsQuery>;
      const replay = log.since(q.since ?? 0, q.host, q.limit ?? 1000);
      return { events: replay.events, last: replay.last, truncated: replay.truncated };
    },
    wsHandler: (socket: WebSocket, request: FastifyRequest) => {
      const q = request.query as z.output<typeof EventsQuery>;
      const host = q.host;
      let lastSent = q.since ?? log.last;
      const send = (event: OperatorEvent): void => {
        if (host !== undefined && event.host !== host) return;
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > maxBuffered) {
          socket.close(1013, `too slow; resume with since=${lastSent}`);
          return;
        }
        socket.send(JSON.stringify(event));
        lastSent = event.seq;
      };
      // Replay and subscribe in the same tick: no event can fall between them.
      if (q.since !== undefined) {
        const replay = log.since(q.since, host);
        if (replay.truncated) {
          socket.send(JSON.stringify({ type: 'truncated', since: q.since, oldest: replay.oldest }));
        }
        for (const event of replay.events) send(event);
        lastSent = replay.last;
      }
      const unsubscribe = log.subscribe(send);
      let alive = true;
      const ping = setInterval(() => {
        if (!alive) {
          socket.terminate();
          return;
        }
        alive = false;
        socket.ping();
      }, pingMs);
      ping.unref();
      socket.on('pong', () => {
        alive = true;
      });
      socket.on('message', () => undefined); // the stream is one-way; client messages are ignored
      socket.on('close', () => {
        clearInterval(ping);
        unsubscribe();
      });
      socket.on('error', () => socket.terminate());
    },
  });
}
