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
  #buf: T[] = [];
  #head = 0;
  #newest = 0;
  #released = 0;
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
    if (ev.ktimeNs < this.#released) {
      this.stats.late++; // too late to be ordered: release now rather than hold it forever
      this.#emit(ev);
      return;
    }
    const buf = this.#buf;
    let i = buf.length;
    while (i > this.#head && buf[i - 1]!.ktimeNs > ev.ktimeNs) i--;
    if (i === buf.length) buf.push(ev);
    else {
      buf.splice(i, 0, ev);
      this.stats.reordered++;
    }
    if (ev.ktimeNs > this.#newest) this.#newest = ev.ktimeNs;
    this.#release(this.#newest - this.#windowNs);
    if (buf.length - this.#head > this.#maxBuffered) this.#release(Infinity);
    if (this.#head < buf.length && !this.#timer) {
      this.#timer = setTimeout(() => this.#onTimer(), this.#windowMs);
      this.#timer.unref();
    }
  }

  #release(upTo: number): void {
    const buf = this.#buf;
    let h = this.#head;
    while (h < buf.length && buf[h]!.ktimeNs <= upTo) {
      const ev = buf[h++]!;
      this.#released = ev.ktimeNs;
      this.#emit(ev);
    }
    if (h === buf.length) {
      this.#buf = [];
      this.#head = 0;
    } else if (h > 4096) {
      this.#buf = buf.slice(h);
      this.#head = 0;
    } else {
      this.#head = h;
    }
  }

  #onTimer(): void {
    this.#timer = undefined;
    // Nothing newer came within the window: what is buffered has waited long enough.
    this.#release(Infinity);
  }

  /** Releases everything buffered (at stop, or before reading counters). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#release(Infinity);
  }

  get buffered(): number {
    return this.#buf.length - this.#head;
  }
}
