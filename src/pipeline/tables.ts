// The pipeline's tables for a configuration: a decoder per opcode, an output shaper per event type and the set
// of event types to emit, plus the user-name lookup enrichment uses. The agent builds its pipeline from these,
// and bench/pipeline replays recorded ring records through the very same tables, so both run the same code.
import type { VigilConfig } from '../config/config.ts';
import { decodeCgroup, decodeComm, decodeCredsEvent, decodeExec, decodeExit, decodeFork, decodeSyscallEvent } from '../events/decode.ts';
import { VIGIL_OPCODE } from '../events/layout.generated.ts';
import { HostFiles } from '../process/host-files.ts';
import type { UserResolver } from '../process/users.ts';
import type { EnrichContext } from './enrich.ts';
import { fileHeldKind, netHeldKind } from './record-bytes.ts';
import type { HeldKind } from './held.ts';
import { processOutputs, syscallOutput } from './outputs.ts';
import type { OutputShaper, RecordDecoder } from './pipeline.ts';

export interface PipelineTables {
  decoders: Map<number, RecordDecoder>;
  /** Opcodes whose records the pipeline holds as bytes (held.ts). */
  held: Map<number, HeldKind>;
  outputs: Map<string, OutputShaper>;
  /** Output event types to emit. */
  types: Set<string>;
}

/**
 * The tables for `events` (the config's events section) and the syscall sensor's enabled event types
 * (`NormalizedSyscallConfig.ops`). Never throws: both are validated before they get here.
 */
export function pipelineTables(events: VigilConfig['events'], syscallOps: Iterable<string>): PipelineTables {
  const types = new Set<string>();
  for (const [t, on] of Object.entries(events.process)) if (on) types.add(t);
  if (events.containers) {
    types.add('container_started');
    types.add('container_stopped');
  }
  const decoders = new Map<number, RecordDecoder>([
    [VIGIL_OPCODE.EXEC, decodeExec],
    [VIGIL_OPCODE.FORK, decodeFork],
    [VIGIL_OPCODE.EXIT, decodeExit],
    [VIGIL_OPCODE.CREDS, decodeCredsEvent],
    [VIGIL_OPCODE.COMM, decodeComm],
    [VIGIL_OPCODE.CGROUP, decodeCgroup],
    [VIGIL_OPCODE.FILE, decodeSyscallEvent],
    [VIGIL_OPCODE.NET, decodeSyscallEvent],
    [VIGIL_OPCODE.SYS, decodeSyscallEvent],
  ] as [number, RecordDecoder][]);
  const outputs = new Map<string, OutputShaper>(processOutputs);
  for (const op of syscallOps) {
    types.add(op);
    outputs.set(op, syscallOutput);
  }
  const held = new Map<number, HeldKind>([
    [VIGIL_OPCODE.FILE, fileHeldKind],
    [VIGIL_OPCODE.NET, netHeldKind],
  ]);
  return { decoders, held, outputs, types };
}

/**
 * What the agent's enrichment looks up outside the process cache: the user name of a process
 * (UserResolver.processUserName) and whether its executable is the host's file (`hostExe`). Both are asked
 * once per exec image (enrich memoizes).
 */
export function agentEnrichment(users: UserResolver, hostFiles = new HostFiles()): Pick<EnrichContext, 'userName' | 'hostFile'> {
  return {
    userName: (e) => users.processUserName(e),
    hostFile: (exePath, dev, ino) => hostFiles.isHostFile(exePath, dev, ino),
  };
}
