// bench/pipeline: the agent configuration every part of the benchmark uses (recorder, replay, live agent, the
// sensor host of the C consumer): the embedded defaults, with every file and network event type on (the
// defaults report only sensitive changes and secret reads among file events) and fork events emitted, so
// that every record the kernel hands over becomes an output event (cgroup records aside), as every line of
// the C consumer does.
import { merge, validateConfig, type VigilConfig } from '../../src/config/config.ts';

// Detection rules are off: the target is the pipeline's own cost (decode, enrich, serialise, write), which the
// C consumer's line is compared with. With the default rules every open event would also be built as an
// object and checked by three rules, work the C consumer has no counterpart for.
export const BENCH_OVERRIDES = {
  events: { process: { fork: true }, files: true, network: true },
  rules: { enabled: false },
};

/** The validated config, with `extra` merged over the bench's overrides. Throws ConfigError on bad input. */
export function benchConfig(extra: unknown = {}): VigilConfig {
  return validateConfig(merge(merge({}, BENCH_OVERRIDES), extra), 'bench/pipeline');
}
