#!/bin/sh
# uwsgi-node container entrypoint.
# uWSGI 2.0 resolves nothing in subscriptions: `server=` must be a numeric IPv4 (it uses inet_addr) and the
# announced `addr=` is what the router connects to, so both are numeric here. The compose file gives the
# router a static address (ROUTER_IP); this node announces its own IPv4 (from `hostname -i`).
#   ROUTER_IP (default 172.28.0.10)  SUBSCRIPTION_PORT (2626)  KEY (demo.localhost)  PORT (3031)
set -eu
ROUTER_IP="${ROUTER_IP:-172.28.0.10}"
SUBSCRIPTION_PORT="${SUBSCRIPTION_PORT:-2626}"
KEY="${KEY:-demo.localhost}"
PORT="${PORT:-3031}"
SELF_IP="${SELF_IP:-$(hostname -i | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1)}"

# --die-on-term: SIGTERM (docker stop) shuts down instead of reloading, and shutdown sends the unsubscribe.
exec uwsgi --plugin python3 --socket "0.0.0.0:$PORT" --wsgi-file /app/app.py --master --die-on-term \
  --uid nobody --gid nogroup \
  --subscribe2 "server=$ROUTER_IP:$SUBSCRIPTION_PORT,key=$KEY,addr=$SELF_IP:$PORT"
