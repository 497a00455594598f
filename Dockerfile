# syntax=docker/dockerfile:1
# One image for the gateway, the admin API and the one-shot migration (docker-compose.yml picks the
# command). Build stage compiles with swc; the runtime stage has production dependencies and dist/ only,
# and runs as the unprivileged `node` user.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script is needed to compile (dev tools such as the Codex CLI fetch binaries).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY .swcrc ./
COPY scripts/build.mjs scripts/build.mjs
COPY apps apps
COPY libs libs
COPY test/support test/support
RUN node scripts/build.mjs \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/test

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# DATA_DIR is only written without DATABASE_URL (embedded PGlite) or MASTER_KEY (generated key file).
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080 8081
# Readiness, not just liveness: the database answers and the process is not draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||process.env.GATEWAY_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The V8 flags of scripts/node-flags.mjs (memory), as npm start runs the apps.
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=30", "--liftoff-only", "dist/apps/gateway/src/main.js"]
