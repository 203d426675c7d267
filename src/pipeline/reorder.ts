// Puts events from different CPUs back in timestamp order within a small window, so that a process's events
// come out in causal order (perf buffers are per CPU; even one ring can interleave CPUs slightly). Events
// arrive almost sorted, so an insertion from the back costs O(1) amortized. An event is released once an
// event at least `windowNs` newer has been seen, or when it has waited `windowMs` of wall time. A timer
// runs only while something is buffered.

export interface Timed {
  ktimeNs: number;
}

export interface ReorderStats {
  /** Events that arrived older than one already released: passed through as late, counted. */
  late: number;
  /** Events that had to be moved to restore order. */
  reordered: number;
  buffered: number;
}

export class ReorderBuffer<T extends Timed> {
  readonly #windowNs: number;
  readonly #windowMs: number;
  readonly #emit: (ev: T) => void;
  readonly #maxBuffered: number;
  /**
   * The buffered events in order, as a ring (capacity a power of two, grown by doubling, never past what
   * maxBuffered needs): a steady stream reuses its slots instead of growing and trimming an array, which was
   * an eighth of what the pipeline allocated (bench/pipeline).
   */
  #ring: (T | undefined)[] = new Array<T | undefined>(64).fill(undefined);
  /**
   * The events' times, slot for slot with #ring, and [newest seen, newest released] in #t: an event's time
   * is read from it once (events come in many shapes, so that read is a polymorphic load), and the insertion
   * scan and the release check read unboxed doubles from one array instead of touching each event.
   */
  #times = new Float64Array(64);
  readonly #t = new Float64Array(2);
  #mask = 63;
  #head = 0;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly stats: ReorderStats = { late: 0, reordered: 0, buffered: 0 };

  constructor(windowMs: number, emit: (ev: T) => void, maxBuffered = 100_000) {
    this.#windowMs = windowMs;
    this.#windowNs = windowMs * 1e6;
    this.#emit = emit;
    this.#maxBuffered = maxBuffered;
  }

  push(ev: T): void {
    if (this.#windowNs === 0) {
      this.#emit(ev);
      return;
    }
    const k = ev.ktimeNs;
    const t = this.#t;
    if (k < t[1]!) {
      this.stats.late++; // too late to be ordered: release now rather than hold it forever
      this.#emit(ev);
      return;
    }
    if (this.#size === this.#ring.length) this.#grow();
    const ring = this.#ring;
    const times = this.#times;
    const mask = this.#mask;
    const head = this.#head;
    // From the back: the place after the last event not newer than this one (usually the end).
    let i = this.#size;
    while (i > 0 && times[(head + i - 1) & mask]! > k) i--;
    if (i < this.#size) {
      for (let j = this.#size; j > i; j--) {
        ring[(head + j) & mask] = ring[(head + j - 1) & mask];
        times[(head + j) & mask] = times[(head + j - 1) & mask]!;
      }
      this.stats.reordered++;
    }
    ring[(head + i) & mask] = ev;
    times[(head + i) & mask] = k;
    this.#size++;
    if (k > t[0]!) t[0] = k;
    this.#release(false);
    if (this.#size > this.#maxBuffered) this.#release(true);
    if (this.#size > 0 && !this.#timer) this.#arm();
  }

  /**
   * A method of its own: the timer's closure over `this` in push() made V8 allocate a context on every push
   * (~40 bytes per event, bench/pipeline's sampled allocations), not only when a timer was set.
   */
  #arm(): void {
    this.#timer = setTimeout(() => this.#onTimer(), this.#windowMs);
    this.#timer.unref();
  }

  /** Twice the slots, the events moved to the front in order. */
  #grow(): void {
    const old = this.#ring;
    const ring = new Array<T | undefined>(old.length * 2).fill(undefined);
    const times = new Float64Array(old.length * 2);
    for (let i = 0; i < this.#size; i++) {
      ring[i] = old[(this.#head + i) & this.#mask];
      times[i] = this.#times[(this.#head + i) & this.#mask]!;
    }
    this.#ring = ring;
    this.#times = times;
    this.#mask = ring.length - 1;
    this.#head = 0;
  }

  /** Releases the events a window older than the newest seen, or all of them. */
  #release(all: boolean): void {
    const ring = this.#ring;
    const times = this.#times;
    const t = this.#t;
    const upTo = all ? Infinity : t[0]! - this.#windowNs;
    const mask = this.#mask;
    while (this.#size > 0) {
      const h = this.#head;
      const k = times[h]!;
      if (k > upTo) break;
      const ev = ring[h]!;
      ring[h] = undefined; // not kept alive by its slot
      this.#head = (h + 1) & mask;
      this.#size--;
      t[1] = k;
      this.#emit(ev);
    }
  }

  #onTimer(): void {
    this.#timer = undefined;
    // Nothing newer came within the window: what is buffered has waited long enough.
    this.#release(true);
  }

  /** Releases everything buffered (at stop, or before reading counters). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#release(true);
  }

  get buffered(): number {
    return this.#size;
  }
}
