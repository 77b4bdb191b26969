FROM node:20-bookworm-slim
WORKDIR /app
# better-sqlite3 builds its native addon at install time.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The whole source tree (.dockerignore leaves out node_modules, dist and data), so a new folder needs no edit here.
COPY . .
# The README's install, pinned to the lockfile: npm ci installs and builds (the prepare script), then the dev
# dependencies go. test/docker-compose.test.ts checks these steps against the README.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund
EXPOSE 1883 8080
CMD ["node", "dist/cli/main.js", "serve"]
