// The agent's accounting (src/agent/accounting.ts): from one snapshot of every stage's counters, does
// "kernel emitted = delivered + counted drops" hold per sink, and does the stop line say so in a form that
// parses back? Fed synthetic counters: a balanced run, then each way a record can go missing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { account, foldRetired, formatAccounting, type AccountingInput, type RetiredSinkInput } from '../../src/agent/accounting.ts';
import type { PipelineCounters } from '../../src/pipeline/pipeline.ts';

function pipeline(o: Partial<PipelineCounters> = {}): PipelineCounters {
  return {
    records: 100,
    decoded: 98,
    dropped: { decodeError: 2, unknownOpcode: 0, filtered: 3, failed: 0 },
    heldOverflow: 0,
    internal: 15,
    emitted: 80,
    synthetic: 1,
    buffered: 0,
    reorder: { late: 0, reordered: 0 },
    byType: {},
    ...o,
  };
}

function input(o: Partial<AccountingInput> = {}): AccountingInput {
  return {
    kernel: { emitted: 100, reserveFailed: 7, outputFailed: 0 },
    reader: { received: 100, discarded: 0, lost: 0 },
    pipeline: pipeline(),
    sinks: {
      fast: { received: 81, sent: 81, dropped: {}, queued: 0, retries: 0 },
      slow: { received: 81, sent: 50, dropped: { 'queue-full': 30, shutdown: 1 }, queued: 0, retries: 3 },
    },
    final: true,
    ...o,
  };
}

test('a run where every record went somewhere counted balances, per sink', () => {
  const a = account(input());
  assert.equal(a.balanced, true);
  assert.deepEqual(a.imbalance, { fast: 0, slow: 0 });
  assert.equal(a.kernel.attempted, 107);
  assert.equal(a.unread, 0);
  assert.equal(a.sinks.slow!.droppedTotal, 31);
});

test('each way of losing a record unbalances it', () => {
  // The reader missed a record the kernel emitted (after the stop, nothing may be unread).
  assert.equal(account(input({ reader: { received: 99, discarded: 0, lost: 0 }, pipeline: pipeline({ records: 99, internal: 14 }) })).balanced, false);
  // The pipeline read a record and put it in no counter.
  assert.equal(account(input({ pipeline: pipeline({ internal: 14 }) })).balanced, false);
  // A sink lost an event without counting it.
  const lossy = input();
  lossy.sinks.slow = { received: 81, sent: 50, dropped: { 'queue-full': 30 }, queued: 0, retries: 0 };
  const a = account(lossy);
  assert.equal(a.balanced, false);
  assert.deepEqual(a.imbalance, { fast: 0, slow: 1 });
  // A sink that never received an event the pipeline emitted.
  const missed = input();
  missed.sinks.fast = { received: 80, sent: 80, dropped: {}, queued: 0, retries: 0 };
  assert.equal(account(missed).balanced, false);
  // Still buffered at the final count.
  assert.equal(account(input({ pipeline: pipeline({ emitted: 79, buffered: 1 }), sinks: { s: { received: 80, sent: 80, dropped: {}, queued: 0, retries: 0 } } })).balanced, false);
});

test('while running, records in flight (unread, queued, buffered) are accounted as such', () => {
  const a = account(
    input({
      final: false,
      kernel: { emitted: 110, reserveFailed: 7, outputFailed: 0 },
      pipeline: pipeline({ emitted: 78, buffered: 2 }),
      sinks: { s: { received: 79, sent: 70, dropped: {}, queued: 9, retries: 0 } },
    }),
  );
  assert.equal(a.unread, 10);
  assert.equal(a.balanced, true);
  assert.equal(a.final, false);
});

test('the stop lines are key=value and name every drop reason', () => {
  const lines = formatAccounting(account(input()));
  assert.equal(lines[0], 'kernel attempted=107 emitted=100 ring-full=7 output-failed=0 read=100 unread=0');
  assert.equal(lines[1], 'pipeline records=100 events=80 synthetic=1 state-only=15 buffered=0 dropped.decodeError=2 dropped.unknownOpcode=0 dropped.filtered=3 dropped.failed=0');
  assert.equal(lines[2], 'sink fast received=81 sent=81 queued=0 dropped=0');
  assert.equal(lines[3], 'sink slow received=81 sent=50 queued=0 dropped=31 dropped.queue-full=30 dropped.shutdown=1');
  assert.match(lines[4]!, /^balanced: /);
  const bad = input();
  bad.sinks.fast!.sent = 80;
  assert.match(formatAccounting(account(bad)).at(-1)!, /^NOT balanced \(fast=1 slow=0\)/);
});

test('records skipped past a corrupt ring header unbalance the run, and the verdict says why', () => {
  const a = account(input({ reader: { received: 97, discarded: 0, lost: 0, corrupt: 1 }, pipeline: pipeline({ records: 97, emitted: 77, internal: 15 }), sinks: { s: { received: 78, sent: 78, dropped: {}, queued: 0, retries: 0 } } }));
  assert.equal(a.balanced, false);
  assert.equal(a.unread, 3);
  const lines = formatAccounting(a);
  assert.match(lines[0]!, / reader-corrupt=1$/);
  assert.match(lines.at(-1)!, /skipped 1 corrupt stretch/);
});

test('removed sinks folded into one account keep it balancing, and one that lost an event still shows', () => {
  // Three sinks reloads removed, each given the events between its joining and its removal.
  const removed: RetiredSinkInput[] = [
    { name: 'file', before: 0, through: 30, generations: [1, 1], received: 30, sent: 30, dropped: {}, queued: 0, retries: 0 },
    { name: 'file', before: 30, through: 50, generations: [2, 2], received: 20, sent: 15, dropped: { 'queue-full': 5 }, queued: 0, retries: 1, lastError: 'disk full' },
    { name: 'webhook', before: 10, through: 60, generations: [2, 3], received: 50, sent: 48, dropped: { shutdown: 2 }, queued: 0, retries: 4 },
  ];
  const earlier = removed.reduce<RetiredSinkInput | undefined>((acc, r) => foldRetired(acc, r), undefined)!;
  assert.deepEqual(
    { ...earlier },
    { name: 'earlier', received: 100, sent: 93, queued: 0, retries: 5, dropped: { 'queue-full': 5, shutdown: 2 }, before: 0, through: 60, generations: [1, 3], sinks: 3, given: 100, lastError: 'disk full' },
  );
  // One sink folded alone keeps its name: its account is still its own.
  assert.deepEqual([foldRetired(undefined, removed[0]!).name, foldRetired(undefined, removed[0]!).sinks], ['file', 1]);
  // The inputs are not written to.
  assert.deepEqual(removed[1]!.dropped, { 'queue-full': 5 });
  const a = account(input({ retired: [earlier, { ...removed[2]!, name: 'file[1]' }] }));
  assert.equal(a.balanced, true);
  assert.deepEqual(a.retired.map((r) => [r.name, r.sinks, r.given]), [['earlier', 3, 100], ['file[1]', 1, 50]]);
  assert.match(formatAccounting(a).join('\n'), /^retired sinks earlier sinks=3 generations=1-3 given=100 received=100 sent=93 queued=0 dropped=7 dropped\.queue-full=5 dropped\.shutdown=2$/m);
  // A folded sink that lost an event uncounted unbalances the folded account too.
  const lossy = foldRetired(earlier, { name: 'file', before: 60, through: 70, generations: [4, 4], received: 10, sent: 9, dropped: {}, queued: 0, retries: 0 });
  assert.equal(account(input({ retired: [lossy] })).balanced, false);
});
