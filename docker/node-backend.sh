#!/bin/sh
# node-backend container: runs the demo HTTP backend and announces it to the router with the Switchyard agent.
#   PORT            backend port (default 3000)
#   SUBSCRIBE_TO    SERVER:KEY for the agent (default router:2626:demo.localhost)
#   ANNOUNCE_HOST   host part of the announced address (default: this container's IPv4 from `hostname -i`;
#                   a numeric address works with every router, including uWSGI's, which resolves nothing)
set -eu
PORT="${PORT:-3000}"
SUBSCRIBE_TO="${SUBSCRIBE_TO:-router:2626:demo.localhost}"
ANNOUNCE_HOST="${ANNOUNCE_HOST:-$(hostname -i | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1)}"

PORT="$PORT" node docker/demo-backend.js &
backend=$!
node packages/switchyard/dist/cli.js agent \
  --subscribe-to "$SUBSCRIBE_TO" --address "$ANNOUNCE_HOST:$PORT" --proto http &
agent=$!

# docker stop sends SIGTERM: stop the agent first (it unsubscribes), then the backend.
stop() {
  kill -TERM "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
  kill -TERM "$backend" 2>/dev/null || true
  wait "$backend" 2>/dev/null || true
  exit 0
}
trap stop TERM INT

# If either process dies on its own, stop the other and exit non-zero so the restart policy applies.
while kill -0 "$backend" 2>/dev/null && kill -0 "$agent" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
kill -TERM "$agent" "$backend" 2>/dev/null || true
wait 2>/dev/null || true
exit 1
