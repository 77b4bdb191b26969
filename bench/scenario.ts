/** One line of the results table: fleetlog against one baseline, same machine, same load, same run. */
export interface Comparison {
  scenario: string;
  unit: string;
  /** Whether a bigger figure is better (throughput) or worse (latency, memory). */
  better: 'higher' | 'lower';
  fleetlog: number[];
  baselineName: string;
  /** Empty for a breakdown row, which has no baseline of its own. */
  baseline: number[];
  /** The target from the benchmark issue, as text, and whether the median meets it. */
  target?: string;
  met?: boolean;
  /** Anything the reader needs to interpret the figure. */
  note?: string;
}

export interface ScenarioContext {
  quick: boolean;
  repeats: number;
  /** Messages per second the latency scenario paces. */
  latencyRate: number;
  /** How long each latency run lasts, s (not in --quick). */
  latencySeconds: number;
  progress: (label: string, done: number, total: number) => void;
}

export interface Scenario {
  name: string;
  run(ctx: ScenarioContext): Promise<Comparison[]>;
}
