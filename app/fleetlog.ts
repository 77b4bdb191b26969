import type { IngestServiceConfig, ProcessingConfig, RebuildConfig, ServerConfig } from './config.js';
import { startIngestRole, type RunningIngest } from './roles/ingest.js';
import { startProcessRole, type ProcessingDeps, type RunningProcessing } from './roles/process.js';
import { startRebuildRole, type RunningRebuild } from './roles/rebuild.js';
import { startServe, type RunningFleetlog, type ServeDeps } from './roles/serve.js';

export type { IngestServiceConfig, ProcessingConfig, RebuildConfig, ServerConfig } from './config.js';
export { localServerConfig } from './config.js';
export type { RunningIngest } from './roles/ingest.js';
export { redactUrl } from './roles/ingest.js';
export type { ProcessingDeps, RunningProcessing } from './roles/process.js';
export type { RunningRebuild } from './roles/rebuild.js';
export type { Fleet, RunningFleetlog, ServeDeps } from './roles/serve.js';
export { PROJECTION_NAMES } from '../processors/registry.js';
export { writerRuns } from '../eventlog/sqlite-event-log.js';

/** What a process runs; each CLI command is one role. */
export type Role = 'serve' | 'demo' | 'ingest' | 'process' | 'rebuild';

/**
 * The one composition root: builds the pieces for a role from the config, and hands back what runs with a `close`
 * that stops it in the shutdown order (shutdown.ts). The pieces each role needs:
 * - `serve`: the event log (written), broker, ingest, the read side unless --processors off, the command side
 *   (control/: desired state and commands through the embedded broker; with the read side only), the HTTP API;
 * - `demo`: `serve` plus a simulated fleet (`deps.fleet`: the CLI builds it, since only cli/ and bench/ may run
 *   the simulator), stopped first;
 * - `ingest`: the event log (written), an external broker's shared subscription, /healthz and /metrics;
 * - `process`: the event log (read-only), the read side, optionally the HTTP API, and with `commandBrokerUrl` the
 *   command side through that broker (the JetStream log then takes its events, and only those);
 * - `rebuild`: the SQLite log (read-only) and the read side, reset.
 * The event-log choice (event-log-choice.ts), the HTTP listener's host rules (http-listener.ts) and the shutdown
 * order are written once, there.
 */
export function startFleetlog(
  role: 'serve' | 'demo',
  config: ServerConfig,
  deps: ServeDeps,
): Promise<RunningFleetlog>;
export function startFleetlog(
  role: 'ingest',
  config: IngestServiceConfig,
  deps: Pick<ServeDeps, 'logger' | 'metrics'>,
): Promise<RunningIngest>;
export function startFleetlog(
  role: 'process',
  config: ProcessingConfig,
  deps: ProcessingDeps,
): Promise<RunningProcessing>;
export function startFleetlog(
  role: 'rebuild',
  config: RebuildConfig,
  deps: Parameters<typeof startRebuildRole>[1],
): Promise<RunningRebuild>;
export function startFleetlog(
  role: Role,
  config: ServerConfig | IngestServiceConfig | ProcessingConfig | RebuildConfig,
  deps: ServeDeps | ProcessingDeps | Parameters<typeof startRebuildRole>[1],
): Promise<RunningFleetlog | RunningIngest | RunningProcessing | RunningRebuild> {
  switch (role) {
    case 'serve':
      return startServe(config as ServerConfig, { ...(deps as ServeDeps), fleet: undefined });
    case 'demo':
      return startServe(config as ServerConfig, deps);
    case 'ingest':
      return startIngestRole(config as IngestServiceConfig, deps);
    case 'process':
      return startProcessRole(config as ProcessingConfig, deps as ProcessingDeps);
    case 'rebuild':
      return startRebuildRole(config as RebuildConfig, deps as Parameters<typeof startRebuildRole>[1]);
  }
}
