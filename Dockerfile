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
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
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
# The admin listener answers /healthz while the process is alive (put admin on 0.0.0.0 inside the
# pod's or container's network namespace only).
HEALTHCHECK --interval=10s --timeout=2s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WARDEN_ADMIN_PORT ?? '9901') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/warden/bin/warden.js"]
CMD ["proxy", "-c", "/etc/warden/sidecar.yaml"]
