# DCX server image: build with the full toolchain, run with production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm ci --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production DATA_DIR=/var/lib/dcx PORT=8080 CONFIRM_PORT=7070
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY public ./public
RUN mkdir -p /var/lib/dcx && chown node:node /var/lib/dcx
USER node
VOLUME ["/var/lib/dcx"]
EXPOSE 8080 7070
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# As `npm start`: young-generation semi-spaces capped at 4 MB keep the resident set near 135 MB while serving (bench/).
CMD ["node", "--max-semi-space-size=4", "dist/src/server/main.js"]
