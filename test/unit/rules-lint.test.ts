// Rule-set warnings (src/rules/lint.ts) and the field catalog they come from (src/rules/fields.ts): a field
// no event of a rule's types has is reported where it is named (condition, macro, output, exception), with
// the name likely meant; rules without types and unused macros and lists are reported; nothing is reported
// for the default rules. The catalog is checked against what the pipeline really puts in events, so that a
// warning never names a field that events do carry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ContainerInfo } from '../../src/containers/resolver.ts';
import type { ExecEvent } from '../../src/events/types.ts';
import { Enricher } from '../../src/pipeline/enrich.ts';
import { processOutputs, syscallOutput } from '../../src/pipeline/outputs.ts';
import { Pipeline, type Decoded } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { FieldCatalog } from '../../src/rules/fields.ts';
import { compileRules, DEFAULT_RULES_FILE, readRuleFile } from '../../src/rules/rules.ts';

const creds = { uid: 1000, gid: 1000, euid: 0, egid: 1000, suid: 1000, sgid: 1000, fsuid: 1000, fsgid: 1000, capEffective: '0', capPermitted: '0', capInheritable: '0', loginuid: 1000 };
const container: ContainerInfo = {
  id: 'c'.repeat(64), runtime: 'containerd', name: 'web', image: 'registry.local/web:1', imageDigest: 'sha256:1', labels: { app: 'web' }, pid: 1, createdAt: undefined,
  pod: { uid: 'uid-1', name: 'web-0', namespace: 'default', labels: { app: 'web' } }, namespace: 'k8s.io', podmanPod: undefined, enrichment: 'done', enrichmentError: undefined,
  cgroupPath: '/kubepods/c', cgroupIds: [10], seenMs: 0, stoppedMs: undefined, existing: true,
};

/** Every member name at every level an object has (one level: its own keys). */
const keysOf = (o: object | undefined): string[] => (o ? Object.keys(o) : []);

test('the catalog holds every member the pipeline puts in events, of the process, parent, container and pod too', () => {
  const catalog = new FieldCatalog();
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const snap = (pid: number, ppid: number, startNs: number) => ({
    type: 'snapshot' as const, pid, ppid, startNs, comm: `p${pid}`, exePath: `/usr/bin/p${pid}`, exeIno: pid, exeDev: 2049, exeMtimeNs: 1, argv: [`p${pid}`], envRaw: ['HOME=/root'],
    creds, ns: { cgroupId: 10, pidns: 1, mntns: 1, nspid: pid }, tty: 'pts0', unknown: [], kernelThread: false,
  });
  cache.apply(snap(1, 0, 1e9));
  cache.apply(snap(100, 1, 2e9));
  cache.apply({
    type: 'exec', ktimeNs: 2.9e9, pid: 100, tid: 100, cgroupId: 10, comm: 'trunc', startNs: 2e9, ppid: 1, parentStartNs: 1e9, oldPid: 100, creds, ns: { cgroupId: 10, pidns: 1, mntns: 1, nspid: 100 },
    exe: { path: '/bin/trunc', ino: 1, dev: 1, mtimeNs: 0 }, filename: '/bin/trunc', argv: ['trunc'], argc: 900, envRaw: [], tty: 'pts1', flags: 0, argvTruncated: true, envTruncated: false, pathTruncated: false, subreaper: false,
  } as ExecEvent);
  const en = new Enricher({ cache, container: () => container, userName: () => 'alice' });
  const seen = { process: new Set<string>(), parent: new Set<string>(), container: new Set<string>(), pod: new Set<string>() };
  for (const [pid, tid] of [[100, 100], [100, 101], [1, 1], [99_999, 99_999]] as const) {
    en.build('open', 3e9, pid, tid, 10, {}, true);
    const ev = en.event!;
    for (const k of keysOf(ev)) assert.ok(catalog.fields('event', ['open']).has(k), `event.${k}`);
    for (const v of ['process', 'parent', 'container', 'pod'] as const) for (const k of keysOf(ev[v] as object | undefined)) seen[v].add(k);
  }
  for (const v of ['process', 'parent', 'container', 'pod'] as const) {
    const known = catalog.fields(v);
    for (const k of seen[v]) assert.ok(known.has(k), `${v}.${k} is in events but not in the catalog`);
    assert.ok(seen[v].size > 2, `${v}: the events had members (${[...seen[v]]})`);
  }
  // The parent has only what parentRef gives: a rule reading parent.user is told so.
  assert.deepEqual([...catalog.fields('parent')].sort(), [...seen.parent].sort());

  // Each process event type's members: exactly what its shaper puts out with every field set.
  const shapers = new Map(processOutputs);
  const base = { ktimeNs: 1, pid: 10, tid: 10, cgroupId: 1 };
  const full: Record<string, Record<string, unknown>> = {
    exec: { ...base, type: 'exec', filename: '/f', argc: 1, oldPid: 9, envRaw: ['A=1'], argvTruncated: true, envTruncated: true, pathTruncated: true, kill: { rule: 'r', signal: 'SIGKILL', result: 'sent' } },
    exit: { ...base, type: 'exit', status: 9, exitCode: 0, signal: 9, coreDumped: true },
    fork: { ...base, type: 'fork', childTgid: 11, childPid: 11, childPpid: 10, thread: true },
    creds: { ...base, type: 'creds', syscallNr: 105, oldCreds: creds, creds },
    comm: { ...base, type: 'comm', oldComm: 'a', comm: 'b' },
  };
  for (const [type, ev] of Object.entries(full)) {
    const out = shapers.get(type)!(ev as unknown as Decoded)!;
    const members = [...catalog.fields('event', [type])].filter((k) => !catalog.fields('event', ['no such type']).has(k));
    assert.deepEqual(Object.keys(out).sort(), members.sort(), type);
  }
  // Syscall events: what the shared shaper copies (decoders' key lists, checked against the decoders in
  // fuzz-decode.test.ts) is what the catalog has.
  const open = syscallOutput({ type: 'open', group: 'file', pid: 1, ktimeNs: 1, path: '/x', resolvedPath: '/x', flagNames: 'O_RDONLY', ret: 3, sensitive: true } as unknown as Decoded)!;
  for (const k of Object.keys(open)) assert.ok(catalog.fields('event', ['open']).has(k), `open: ${k}`);
  assert.ok(!catalog.fields('event', ['open']).has('remotePort') && catalog.fields('event', ['connect']).has('remotePort'));
});

test("the catalog holds the members of a container's start and stop events", () => {
  const lines: OutputEvent[] = [];
  const sink: Sink = {
    name: 'capture',
    write: (ev: OutputEvent) => void lines.push(ev),
    flush: async () => {},
    close: async () => {},
    stats: (): SinkStats => ({ received: lines.length, sent: lines.length, dropped: {}, queued: 0, retries: 0 }),
  };
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const p = new Pipeline({
    decoders: new Map(), outputs: new Map(), cache, enrich: { userName: () => undefined }, router: new Router(), sinks: [sink],
    types: new Set(['container_started', 'container_stopped']), reorderWindowMs: 0, holdForEnrichmentMs: 0,
  });
  p.containerEvent({ type: 'container_started', container });
  p.containerEvent({ type: 'container_stopped', container });
  const catalog = new FieldCatalog();
  assert.equal(lines.length, 2);
  for (const ev of lines) {
    for (const k of Object.keys(ev)) assert.ok(catalog.fields('event', [ev.type]).has(k), `${ev.type}: ${k}`);
    for (const k of Object.keys(ev.container!)) assert.ok(catalog.fields('container').has(k), `container.${k}`);
    for (const k of Object.keys(ev.pod!)) assert.ok(catalog.fields('pod').has(k), `pod.${k}`);
  }
});

test('the default rules compile without a warning', () => {
  const set = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE, 'defaults')] });
  assert.deepEqual(set.warnings, []);
});

test('fields no event has, rules without types and unused macros and lists are warned about, where they are named', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-lint-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'rules.yaml');
  fs.writeFileSync(
    file,
    `
- list: unused_list
  items: [a]
- list: base_shells
  items: [bash]
- list: shells
  items: [base_shells, sh]
- list: allowed
  items: [/usr/bin/ok]
- macro: never_used
  condition: process.comm == "x"
- macro: typo_macro
  condition: event.pth.startsWith("/etc")
- macro: guarded
  condition: has(process.tty) && process.?loginuid.orValue(0) == 0 && container.?image.orValue("") != ""
- rule: Ported from Falco
  desc: x
  types: [exec]
  condition: 'process.name in shells && parent.user == "root" && container.imag == "x" && typo_macro && guarded && [{"k": 1}].exists(process, process.k == 1)'
  output: "{process.cmdline} {path} {event.filename} {pod.namespce} {ancestors[0]} {process.argv}"
  priority: warning
  exceptions:
    - name: e
      fields: [process.exepath, event.resolvedPath]
      values: [[a, b]]
    - name: f
      fields: process.exe
      values: [allowed]
- rule: Opens
  desc: x
  types: [open, connect]
  condition: event.?path.orValue("") == "/x" || event.?remotePort.orValue(0) == 1
  output: "{event.path} {event.remotePort}"
  priority: notice
- rule: No types
  desc: x
  condition: event.ret == 0
  output: x
  priority: debug
`,
  );
  const set = compileRules({ sources: [readRuleFile(file, 'f')] });
  const got = set.warnings.map((w) => `${w.path}: ${w.message}`);
  const has = (re: RegExp) => assert.ok(got.some((g) => re.test(g)), `a warning like ${re}:\n${got.join('\n')}`);
  const rule = /^f item 8 \(rule "Ported from Falco"\)/;
  has(new RegExp(`${rule.source}\\.condition: process\\.name: process has no member "name"; did you mean "comm"\\?$`));
  has(/condition: parent\.user: an event's parent has no "user" \(it has pid, comm, exe, argv, execId\)$/);
  has(/condition: container\.imag: container has no member "imag"; did you mean "image"\?$/);
  has(/\.output: process\.cmdline: process has no member "cmdline"; did you mean "argv"\?$/);
  has(/\.output: event\.path: no exec event has a member "path" \(open, unlink, rmdir, rename, … events have it\)$/);
  has(/\.output: pod\.namespce: pod has no member "namespce"; did you mean "namespace"\?$/);
  has(/exceptions\.0 \("e"\)\.fields: process\.exepath: process has no member "exepath"; did you mean "exe"\?$/);
  has(/exceptions\.0 \("e"\)\.fields: event\.resolvedPath: no exec event has a member "resolvedPath"/);
  has(/^f item 6 \(macro "typo_macro"\)\.condition: event\.pth: no exec event has a member "pth" .*\(the macro is used by rules about exec\)$/);
  has(/^f item 10 \(rule "No types"\): no types: the rule is checked against every event/);
  has(/^f item 5 \(macro "never_used"\): macro "never_used" is used by no rule$/);
  has(/^f item 1 \(list "unused_list"\): list "unused_list" is used by no rule or macro$/);
  // Nothing else: fields events of the rule's types have (event.filename of an exec, process.argv, guarded
  // reads), a comprehension variable named like a variable, a list used through another list's items or an
  // exception's values, and a rule about two types reading each one's fields.
  assert.equal(got.length, 12, got.join('\n'));
  assert.ok(!got.some((g) => /filename|process\.argv:|tty|loginuid|shells|allowed|ancestors|rule "Opens"/.test(g)), got.join('\n'));
});
