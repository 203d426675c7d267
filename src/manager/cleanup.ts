// One cleanup for the whole process, on SIGINT, SIGTERM and exit. Managers register their stop() here and
// unregister when stopped, so every path out of the process releases BPF objects exactly once, newest first
// (links before readers before objects, as each manager's stop() orders them).
//
// Signals: when nobody else listens for SIGINT/SIGTERM, we clean up and re-raise the signal so the exit
// status stays conventional. When the application has its own handler (the agent drains its sinks first),
// we leave the signal to it; the 'exit' hook still runs whatever was not stopped by then.

type Cleanup = () => void;

const registry = new Map<number, { name: string; fn: Cleanup }>();
let next = 1;
let installed = false;

function runAll(): void {
  const entries = [...registry.entries()].reverse();
  registry.clear();
  for (const [, { name, fn }] of entries) {
    try {
      fn();
    } catch (err) {
      process.stderr.write(`vigil: cleanup of ${name} failed: ${(err as Error).message}\n`);
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return; // the application handles it and will exit
  runAll();
  process.removeListener(sig, onSignal);
  process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Registers `fn` to run once at process exit or on a fatal signal. Returns the function that unregisters it. */
export function registerCleanup(name: string, fn: Cleanup): () => void {
  install();
  const id = next++;
  registry.set(id, { name, fn });
  return () => void registry.delete(id);
}

/** Runs every pending cleanup now (newest first). Idempotent. */
export function runCleanups(): void {
  runAll();
}

/** Names of what is still registered (for diagnostics and tests). */
export function pendingCleanups(): string[] {
  return [...registry.values()].map((e) => e.name);
}
