// Kernel-wide BPF run-time statistics (run count and run time per program). The kernel keeps them on while
// any process holds the fd that BPF_ENABLE_STATS returns, and off again when the last one is closed; they
// cost two clock reads per program run, so they are held only while asked for.
import { BPF_STATS_RUN_TIME } from './constants.ts';
import { errorFromErrno } from './errors.ts';
import { lib } from './ffi.ts';

export interface StatsHandle {
  /** Gives the hold back (idempotent); statistics stop when no process holds one. */
  close(): void;
}

/** Turns run-time statistics on until the handle is closed. Throws PermissionError without CAP_SYS_ADMIN. */
export function enableRunTimeStats(): StatsHandle {
  const fd = lib().bpf_enable_stats(BPF_STATS_RUN_TIME) as number;
  if (fd < 0) throw errorFromErrno('enable BPF run-time stats', -fd, { capability: 'CAP_SYS_ADMIN' });
  let open = true;
  return {
    close() {
      if (!open) return;
      open = false;
      lib().close(fd);
    },
  };
}
