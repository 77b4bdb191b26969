FROM node:20-bookworm-slim
WORKDIR /app
# better-sqlite3 builds its native addon at install time.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY app ./app
COPY core ./core
COPY eventlog ./eventlog
COPY ingest ./ingest
COPY processors ./processors
COPY query ./query
COPY simulator ./simulator
COPY cli ./cli
COPY bench ./bench
RUN npm ci && npm prune --omit=dev
EXPOSE 1883 8080
CMD ["node", "dist/cli/main.js", "serve"]
