// bench/pipeline: the agent configuration every part of the benchmark uses (recorder, replay, live agent, the
// sensor host of the C consumer): the embedded defaults, with every file and network event type on (the
// defaults report only sensitive writes among file events) and fork events emitted, so that every record the
// kernel hands over becomes an output event (cgroup records aside), as every line of the C consumer does.
import { merge, validateConfig, type VigilConfig } from '../../src/config/config.ts';

export const BENCH_OVERRIDES = {
  events: { process: { fork: true }, files: true, network: true },
};

/** The validated config, with `extra` merged over the bench's overrides. Throws ConfigError on bad input. */
export function benchConfig(extra: unknown = {}): VigilConfig {
  return validateConfig(merge(merge({}, BENCH_OVERRIDES), extra), 'bench/pipeline');
}
