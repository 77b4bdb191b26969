import type { StoredEvent } from '../../core/event.js';
import type { OpenReadModel, ReadModelDefinition } from '../read-model-definition.js';
import type { RetentionBase } from './retention-status.js';

/** A read model's or sink's progress, as /healthz, /api/projections and the CLI show it. */
export interface ProjectionStatus {
  name: string;
  version: number;
  /** Global seq folded through. */
  position: number;
  /** Events in the log not folded yet. */
  lag: number;
  state: 'running' | 'rebuilding' | 'failed';
  /** Set when failed: the event that could not be folded, and why. */
  failedSeq?: number;
  error?: string;
}

/** One read model inside the runner: its definition, the open model, and how far it has folded. Owns `position`. */
export class FoldSlot {
  /** Folded through (in memory; its checkpoint says so once it is flushed). */
  position = 0;
  /** Written through: `flush` has written what it folded up to here. */
  flushed = 0;
  /** Committed through: what a restart would start from. */
  committed = 0;
  state: ProjectionStatus['state'] = 'running';
  failedSeq?: number;
  error?: string;
  private readonly handles: ReadonlySet<string>;

  constructor(
    readonly definition: ReadModelDefinition,
    readonly model: OpenReadModel<unknown>,
  ) {
    this.handles = new Set(definition.handles);
  }

  get name(): string {
    return this.definition.name;
  }

  get healthy(): boolean {
    return this.state !== 'failed';
  }

  /**
   * The events of a batch this read model folds: after its position, of its types, and not already in the
   * retained base a `before-horizon` model was rebuilt from (`whole` models skip those themselves).
   */
  mine(events: readonly StoredEvent[], base: RetentionBase): readonly StoredEvent[] {
    const cutsBase = this.definition.retained === 'before-horizon' && base.position > 0;
    const skip = (e: StoredEvent) =>
      e.seq <= this.position ||
      !this.handles.has(e.type) ||
      (cutsBase && e.seq <= base.position && e.time < base.horizon);
    // Usually all of them: then the batch itself, without a copy.
    const first = events.findIndex(skip);
    if (first === -1) return events;
    const out = events.slice(0, first);
    for (let i = first + 1; i < events.length; i++) {
      const e = events[i] as StoredEvent;
      if (!skip(e)) out.push(e);
    }
    return out;
  }

  /** Stops folding; what it folded before stays, to be written at the next commit. */
  failed(seq: number | undefined, err: unknown): void {
    this.state = 'failed';
    this.failedSeq = seq;
    this.error = err instanceof Error ? err.message : String(err);
  }

  restarted(): void {
    this.position = 0;
    this.flushed = 0;
    this.committed = 0;
    this.state = 'rebuilding';
    delete this.failedSeq;
    delete this.error;
  }

  status(logHead: number): ProjectionStatus {
    return {
      name: this.name,
      version: this.definition.version,
      position: this.position,
      lag: Math.max(0, logHead - this.position),
      state: this.state,
      ...(this.failedSeq === undefined ? {} : { failedSeq: this.failedSeq }),
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }
}
