# Switchyard image: the router (default CMD) and, with another command, the demo node backend.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production

# Workspace manifests first, so `npm ci` is cached until a dependency changes.
# (npm ci installs devDependencies too: typescript is needed by the build below.)
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/subscription-server/package.json packages/subscription-server/
COPY packages/router/package.json packages/router/
COPY packages/agent/package.json packages/agent/
COPY packages/switchyard/package.json packages/switchyard/
RUN npm ci --include=dev --no-audit --no-fund

COPY tsconfig.json tsconfig.base.json ./
COPY packages/ packages/
COPY docker/ docker/
# Build from source only: stale host build output must not satisfy tsc -b.
RUN rm -rf packages/*/dist && npm run build

# 8080 HTTP, 9090 admin API, 2626/udp subscriptions (keep the UDP port on the internal network only).
EXPOSE 8080 9090 2626/udp
CMD ["node", "packages/switchyard/dist/cli.js", "--http", "0.0.0.0:8080", "--subscription-server", "0.0.0.0:2626", "--admin", "0.0.0.0:9090"]
