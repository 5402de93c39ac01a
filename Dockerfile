# Warden: the sidecar, the CA and the CLI in one image.
#   docker build -t warden .
#   docker run --read-only --tmpfs /tmp -v warden-state:/var/lib/warden warden proxy -c /etc/warden/sidecar.yaml
# Multi-stage: the build stage compiles TypeScript and the native addons (better-sqlite3); the
# runtime stage holds only dist/, production dependencies and a non-root user. Nothing is written
# outside the volumes (/var/lib/warden, /var/lib/warden-ca) and /tmp, so a read-only root works.
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY patches ./patches
# --ignore-scripts skips package.json's postinstall: patch-package applies patches/ here (undici's
# paused-parser fix, nodejs/undici#5360). `npm prune --omit=dev` below removes patch-package, not
# the patched undici.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 && npx --no-install patch-package --error-on-fail
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/warden
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
RUN mkdir -p /var/lib/warden /var/lib/warden-ca /etc/warden && chown -R node:node /var/lib/warden /var/lib/warden-ca
USER node
VOLUME ["/var/lib/warden"]
EXPOSE 8443 9901
# No health check in the image: it runs `warden proxy` (admin /healthz, 9901 by default), `warden ca
# serve` (no admin listener; its own port, 8444 by default) and one-shot commands (ca init, token
# create, enroll), and one check cannot fit them all — a check of the sidecar's admin port left every
# `ca serve` container unhealthy for ever. Each deployment says how its service is checked: compose
# with a `healthcheck` per service, Kubernetes with probes (it ignores HEALTHCHECK), `docker run`
# with --health-cmd (docs/deploy.md).
HEALTHCHECK NONE
ENTRYPOINT ["node", "/opt/warden/bin/warden.js"]
CMD ["proxy", "-c", "/etc/warden/sidecar.yaml"]
