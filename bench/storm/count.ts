// bench/storm: counts the storm's opens in each consumer's output file, line by line: vigil's JSON Lines by the
// event type, the process pid, the path and a distinct kernel timestamp; opensnoop's and the reference's text
// by pid and path.
import fs from 'node:fs';

export interface Counted {
  /** Lines that are the storm's opens. */
  opens: number;
  /** Of those, distinct events (vigil: by ktimeNs; text outputs cannot tell, so = opens). */
  distinct: number;
  /** Opens of the storm that failed (a negative fd in the output). */
  failed: number;
  /** Every line in the file. */
  lines: number;
  bytes: number;
}

/** Calls `line` for every line of a file, reading it in large chunks. */
function eachLine(file: string, line: (s: string) => void): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  let rest = '';
  let bytes = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      bytes += n;
      const text = rest + buf.toString('latin1', 0, n);
      let start = 0;
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
        line(text.slice(start, end));
        start = end + 1;
      }
      rest = text.slice(start);
    }
    if (rest) line(rest);
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/**
 * vigil's file sink: one JSON object per line. Lines that may be an open of `pathName` are parsed (the rest are
 * skipped unparsed: process events of other processes); an open counts when its process pid is the storm's
 * and its path is `pathName`, and it is distinct by its kernel timestamp.
 */
export function countVigil(file: string, pid: number, pathName: string, expected: number): Counted {
  const stamps = new Float64Array(expected);
  let opens = 0;
  let failed = 0;
  let lines = 0;
  let stamped = 0;
  const pathJson = JSON.stringify(pathName);
  const bytes = eachLine(file, (l) => {
    if (!l) return;
    lines++;
    if (!l.includes('"open"') || !l.includes(pathJson)) return;
    let ev: { type?: string; pid?: number; process?: { pid?: number }; path?: string; ret?: number; ktimeNs?: number };
    try {
      ev = JSON.parse(l) as typeof ev;
    } catch {
      return; // not ours to judge here: the sink's own tests check its lines
    }
    if (ev.type !== 'open' || (ev.process?.pid ?? ev.pid) !== pid || ev.path !== pathName) return;
    if (typeof ev.ktimeNs === 'number' && stamped < expected) stamps[stamped++] = ev.ktimeNs;
    opens++;
    if (typeof ev.ret === 'number' && ev.ret < 0) failed++;
  });
  // Without timestamps in the lines, nothing tells two opens apart: distinct = opens.
  let distinct = opens;
  if (stamped === opens) {
    const seen = stamps.subarray(0, stamped).sort();
    distinct = seen.length ? 1 : 0;
    for (let i = 1; i < seen.length; i++) if (seen[i] !== seen[i - 1]) distinct++;
  }
  return { opens, distinct, failed, lines, bytes };
}

/**
 * opensnoop (`PID COMM FD ERR PATH`) and the reference consumer (`PID RET FLAGS PATH`): lines whose first
 * field is the storm's pid and whose path is the storm's.
 */
export function countText(file: string, pid: number, pathName: string): Counted {
  let opens = 0;
  let lines = 0;
  let failed = 0;
  const prefix = `${pid} `;
  const bytes = eachLine(file, (l) => {
    if (!l) return;
    lines++;
    const t = l.trimStart();
    if (!t.startsWith(prefix) || !t.endsWith(` ${pathName}`)) return;
    opens++;
    if (/ -\d+ /.test(t)) failed++;
  });
  return { opens, distinct: opens, failed, lines, bytes };
}
