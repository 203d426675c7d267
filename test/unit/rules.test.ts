// Detection rules: compiling rule files (lists, macros, rules, overrides) with every problem reported where it
// is; CEL conditions evaluated against enriched events; the engine as a router subscriber that only takes the
// event types its rules are about; and a real in-process agent (procfs mode: no BPF, no privileges) raising
// alerts into its sinks, reloading edited rule files all or nothing, and serving them on the API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, validateConfig } from '../../src/config/config.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { alertOf, RuleEngine } from '../../src/rules/engine.ts';
import { compileOutput, compileRules, DEFAULT_RULES_FILE, readRuleFile, RuleError, RULE_EVENT_TYPES, ruleSetFor, type RuleSet } from '../../src/rules/rules.ts';
import { formatText } from '../../src/sinks/text-format.ts';
import { runCli, startTestAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/privileged.ts';

const inline = (items: unknown[], extra: Record<string, unknown> = {}): RuleSet => compileRules({ sources: [{ name: 'test', items }], ...extra });
const rule = (name: string, condition: string, more: Record<string, unknown> = {}) => ({ rule: name, condition, output: `${name}: {process.comm}`, priority: 'warning', ...more });

/** An enriched event as the pipeline makes it. */
function event(type: string, fields: Record<string, unknown> = {}, parts: Partial<OutputEvent> = {}): OutputEvent {
  return { type, time: '2026-11-23T10:00:00.000Z', ktimeNs: 123, process: { pid: 42, comm: 'bash', exe: '/usr/bin/bash', argv: ['bash', '-i'], uid: 1000, user: 'ann', tty: 'pts/0' }, parent: { pid: 1, comm: 'sshd' }, ancestors: [1], ...parts, ...fields };
}

/** The names of the rules that match `ev` (evaluation errors thrown). */
function matching(set: RuleSet, ev: OutputEvent): string[] {
  const ctx = set.context(ev);
  return set.rulesFor(ev.type).filter((r) => r.match(ctx)).map((r) => r.name);
}

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof RuleError || err instanceof ConfigError) return err.issues;
    throw err;
  }
  assert.fail('expected a RuleError');
}

test('the default rules compile, every one about named event types, all of them known', () => {
  const set = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE)] });
  assert.ok(set.rules.length >= 10, `${set.rules.length} rules`);
  for (const r of set.rules) {
    assert.ok(r.types?.length, `${r.name} names its event types (an untyped rule would make every event an object)`);
    for (const t of r.types!) assert.ok(RULE_EVENT_TYPES.has(t), `${r.name}: ${t}`);
    assert.ok(r.desc && r.output, r.name);
  }
  assert.deepEqual(ruleSetFor(validateConfig({}).rules)!.digest, set.digest, 'the configuration loads them by default');
  assert.equal(ruleSetFor(validateConfig({ rules: { enabled: false } }).rules), undefined);
});

test('the default rules match what they are about, and not the ordinary', () => {
  const set = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE)] });
  const ctr = { container: { id: 'a'.repeat(64), name: 'web', image: 'nginx', enrichment: 'done' as const } };
  assert.deepEqual(matching(set, event('exec', {}, ctr)), ['Terminal shell in container']);
  assert.deepEqual(matching(set, event('exec')), [], 'a shell on the host');
  assert.deepEqual(matching(set, event('exec', {}, { ...ctr, process: { pid: 9, comm: 'bash', argv: ['bash', 'x.sh'] } })), [], 'a script in a container: no tty');
  const open = (p: string, more: Record<string, unknown> = {}, proc: Record<string, unknown> = {}) => event('open', { path: p, resolvedPath: p, ret: 3, write: true, sensitive: p.startsWith('/etc/'), flagNames: 'O_WRONLY|O_CREAT|O_TRUNC', ...more }, { process: { pid: 5, comm: 'vi', ...proc } });
  assert.deepEqual(matching(set, open('/etc/passwd')), ['Sensitive file modified']);
  assert.deepEqual(matching(set, open('/etc/passwd', { ret: -13 })), [], 'a refused open changed nothing');
  assert.deepEqual(matching(set, open('/etc/passwd', {}, { comm: 'dpkg' })), [], 'package managers');
  assert.deepEqual(matching(set, { ...open('/etc/passwd'), parent: { pid: 3, comm: 'apt-get' } }), [], 'children of package managers');
  assert.deepEqual(matching(set, open('/var/log/auth.log', { sensitive: false })), ['Log file truncated']);
  // A truncation the kernel flagged (under filters.logPaths), wherever the logs are.
  assert.deepEqual(matching(set, open('/srv/app/logs/app.log', { sensitive: false, logTruncated: true })), ['Log file truncated']);
  assert.deepEqual(matching(set, open('/srv/app/logs/app.log', { sensitive: false })), [], 'not flagged, not under /var/log');
  // truncate(2) and ftruncate(2): flagged by the kernel, or a path under /var/log.
  const truncate = (more: Record<string, unknown>, comm = 'truncate') => event('truncate', { path: '/var/log/syslog', ret: 0, length: 0, sensitive: false, ...more }, { process: { pid: 5, comm } });
  assert.deepEqual(matching(set, truncate({})), ['Log file truncated']);
  assert.deepEqual(matching(set, truncate({ path: '', resolvedPath: '/srv/app/logs/app.log', logTruncated: true })), ['Log file truncated'], 'ftruncate: its path from the fd');
  assert.deepEqual(matching(set, truncate({ ret: -1 })), [], 'a refused truncate changed nothing');
  assert.deepEqual(matching(set, truncate({ path: '/srv/data.db' })), [], 'not a log');
  // A log unlinked or renamed away (the kernel's logRemoved), but not by the rotators.
  const removed = (type: string, comm: string) => event(type, { path: '/var/log/auth.log', ret: 0, sensitive: false, logRemoved: true }, { process: { pid: 5, comm } });
  assert.deepEqual(matching(set, removed('unlink', 'rm')), ['Log file removed']);
  assert.deepEqual(matching(set, removed('rename', 'mv')), ['Log file removed']);
  assert.deepEqual(matching(set, removed('rename', 'logrotate')), [], 'logrotate');
  assert.deepEqual(matching(set, removed('unlink', 'systemd-journal')), [], 'journald');
  // Another file renamed onto a log's path (the kernel's logReplaced), but not by the rotators.
  const replaced = (comm: string, more: Record<string, unknown> = {}) => event('rename', { path: '/tmp/empty', path2: '/var/log/auth.log', ret: 0, sensitive: false, logReplaced: true, ...more }, { process: { pid: 5, comm } });
  assert.deepEqual(matching(set, replaced('mv')), ['Log file replaced']);
  assert.deepEqual(matching(set, replaced('mv', { ret: -18 })), [], 'a failed rename replaced nothing');
  assert.deepEqual(matching(set, replaced('logrotate', { path: '/var/log/auth.log.1', path2: '/var/log/auth.log.2', logRemoved: true })), [], 'logrotate shifting its files');
  assert.deepEqual(matching(set, replaced('mv', { path: '/var/log/a.log', logRemoved: true })), ['Log file removed', 'Log file replaced'], 'one log moved over another: both');
  // Links to credential files or /etc: a symlink's target as given, a hard link's existing file.
  const link = (type: string, target: string, more: Record<string, unknown> = {}, comm = 'ln') => event(type, { path: target, path2: '/tmp/x', resolvedPath2: '/tmp/x', ret: 0, sensitive: true, ...more }, { process: { pid: 5, comm } });
  assert.deepEqual(matching(set, link('symlink', '/etc/shadow')), ['Symlink to sensitive file created']);
  assert.deepEqual(matching(set, link('symlink', '/etc')), ['Symlink to sensitive file created'], '/etc itself, without its slash');
  assert.deepEqual(matching(set, link('symlink', '/etc/shadow', { ret: -17 })), [], 'a failed symlink made nothing');
  assert.deepEqual(matching(set, link('symlink', '/etc/shadow', {}, 'dpkg')), [], 'package managers');
  assert.deepEqual(matching(set, link('symlink', '/etc/hostname', { sensitive: false })), [], 'not a credential file');
  assert.deepEqual(matching(set, link('link', '/etc/shadow')), ['Hard link to sensitive file created']);
  assert.deepEqual(matching(set, link('link', 'shadow', { resolvedPath: '/etc/shadow' })), ['Hard link to sensitive file created'], 'a relative path, resolved');
  assert.deepEqual(matching(set, link('link', '/srv/a')), [], 'not a credential file');
  // A link made in a sensitive directory (the kernel's path2Sensitive): a new entry of /etc that is another file.
  const made = (type: string, comm = 'ln', more: Record<string, unknown> = {}) =>
    link(type, '/tmp/payload.sh', { path2: '/etc/cron.d/job', resolvedPath2: '/etc/cron.d/job', path2Sensitive: true, ...more }, comm);
  assert.deepEqual(matching(set, made('symlink')), ['Link made in sensitive directory']);
  assert.deepEqual(matching(set, made('link')), ['Link made in sensitive directory']);
  assert.deepEqual(matching(set, made('symlink', 'systemctl')), [], 'systemctl enable');
  assert.deepEqual(matching(set, made('symlink', 'dpkg')), [], 'package managers');
  assert.deepEqual(matching(set, made('symlink', 'ln', { ret: -17 })), [], 'a failed link made nothing');
  assert.deepEqual(matching(set, link('symlink', '/etc/shadow', { path2Sensitive: false })), ['Symlink to sensitive file created'], 'made elsewhere: only the target rule');
  assert.deepEqual(matching(set, made('symlink', 'ln', { path: '/etc/shadow' })), ['Symlink to sensitive file created', 'Link made in sensitive directory'], 'both');
  assert.deepEqual(matching(set, open('/etc/shadow', { write: false, sensitive: false, flagNames: 'O_RDONLY' }, { comm: 'cat' })), ['Read sensitive file untrusted']);
  assert.deepEqual(matching(set, open('/etc/shadow', { write: false, sensitive: false, flagNames: 'O_RDONLY' }, { comm: 'sshd' })), []);
  // A read the kernel flagged secret (under filters.secretPaths), whatever its name.
  assert.deepEqual(matching(set, open('/srv/tls/key.pem', { write: false, sensitive: false, secret: true, flagNames: 'O_RDONLY' }, { comm: 'cat' })), ['Read sensitive file untrusted']);
  assert.deepEqual(matching(set, open('/srv/tls/key.pem', { write: false, sensitive: false, flagNames: 'O_RDONLY' }, { comm: 'cat' })), [], 'not secret, not a listed name');
  assert.deepEqual(matching(set, event('exec', {}, { process: { pid: 7, comm: '3', exe: '/memfd:x (deleted)' } })), ['Fileless execution']);
  assert.deepEqual(matching(set, event('exec', {}, { process: { pid: 7, comm: 'nc', exe: '/usr/bin/nc', argv: ['nc', '-e', '/bin/sh', '10.0.0.1', '4444'] } })), ['Netcat remote code execution']);
  assert.deepEqual(matching(set, event('exec', {}, { process: { pid: 7, comm: 'nc', exe: '/usr/bin/nc', argv: ['nc', '-z', 'host', '80'] } })), []);
  assert.deepEqual(matching(set, event('ptrace', { request: 'PTRACE_ATTACH', targetPid: 77, ret: 0 })), ['Process attached with ptrace']);
  // A binary the container's image does not have (its file in the overlay's upper layer), run in it.
  const dropped = (proc: Record<string, unknown>, where: object = ctr) => event('exec', {}, { ...where, process: { pid: 9, comm: 'x', exe: '/tmp/x', argv: ['/tmp/x'], ...proc } });
  assert.deepEqual(matching(set, dropped({ exeUpperLayer: true })), ['Drop and execute new binary in container']);
  assert.deepEqual(matching(set, dropped({})), [], 'a file of the image');
  assert.deepEqual(matching(set, dropped({ exeUpperLayer: true }, {})), [], 'on the host');
  assert.deepEqual(matching(set, dropped({ exeUpperLayer: true, comm: 'dpkg' })), [], 'a package manager');
  // A search for private keys or credentials.
  const search = (argv: string[]) => event('exec', {}, { process: { pid: 9, comm: argv[0]!, argv } });
  assert.deepEqual(matching(set, search(['find', '/', '-name', 'id_rsa*'])), ['Search for private keys or credentials']);
  assert.deepEqual(matching(set, search(['grep', '-r', 'BEGIN RSA PRIVATE', '/home'])), ['Search for private keys or credentials']);
  assert.deepEqual(matching(set, search(['find', '/', '-path', '*/.aws/credentials'])), ['Search for private keys or credentials']);
  assert.deepEqual(matching(set, search(['grep', '-r', 'TODO', 'src'])), [], 'an ordinary search');
  assert.deepEqual(matching(set, search(['cat', '/root/.ssh/id_rsa'])), [], 'not a search tool (reads are the secret-read rule\'s)');
  // A container reaching for a runtime's API socket (mounted into it), whether or not the connect worked.
  const sock = (address: string, where: object = ctr, ret = 0) => event('connect', { family: 'AF_UNIX', remoteAddress: address, ret }, { ...where, process: { pid: 9, comm: 'curl' } });
  assert.deepEqual(matching(set, sock('/var/run/docker.sock')), ['Container runtime socket connected from a container']);
  assert.deepEqual(matching(set, sock('/run/containerd/containerd.sock', ctr, -2)), ['Container runtime socket connected from a container'], 'looking for it');
  assert.deepEqual(matching(set, sock('/run/app/app.sock')), [], 'another socket');
  assert.deepEqual(matching(set, sock('/var/run/docker.sock', {})), [], 'the host: docker\'s own CLI');
  assert.deepEqual(matching(set, event('ptrace', { request: 'PTRACE_TRACEME', ret: 0 })), []);
  const creds = (oldEuid: number, comm: string) => event('creds', { syscall: 'setresuid', old: { uid: 1000, euid: oldEuid }, new: { uid: 0, euid: 0 } }, { process: { pid: 8, comm } });
  assert.deepEqual(matching(set, creds(1000, 'exploit')), ['Root privileges gained']);
  assert.deepEqual(matching(set, creds(1000, 'sudo')), []);
  assert.deepEqual(matching(set, creds(0, 'exploit')), [], 'already root');
  assert.deepEqual(matching(set, event('creds', { syscall: 'setresuid', new: { uid: 0, euid: 0 } })), [], 'no previous credentials known: has(event.old) is false');

  // A container's runtime setting it up (runc's children, forked from runc, running the host's binary) is not
  // a mount or setns "in" it; the same calls by anything else in the container are, a program named like the
  // runtime included, even one that forks itself (its binary is a file of the container, not the host's).
  const runc = { pid: 578, comm: 'runc:[2:INIT]', exe: '/usr/sbin/runc', hostExe: true };
  type Ref = { pid: number; comm: string; exe: string; hostExe?: boolean };
  const mount = (process: Ref, parent: Ref) => ({ ...event('mount', { source: 'proc', target: '/proc/self/fd/6', fstype: 'proc', ret: 0 }, { ...ctr, process }), parent });
  assert.deepEqual(matching(set, mount(runc, { pid: 568, comm: 'runc', exe: '/usr/sbin/runc' })), [], 'runc:[2:INIT] mounting the container');
  assert.deepEqual(matching(set, mount({ pid: 9, comm: 'mount', exe: '/bin/mount' }, { pid: 8, comm: 'sh', exe: '/bin/sh' })), ['Mount in container']);
  assert.deepEqual(matching(set, mount({ pid: 9, comm: 'runc', exe: '/tmp/runc' }, { pid: 8, comm: 'sh', exe: '/bin/sh' })), ['Mount in container'], 'named runc, started by a shell');
  const { hostExe: _, ...inContainer } = runc;
  assert.deepEqual(matching(set, mount(inContainer, { pid: 568, comm: 'runc', exe: '/usr/sbin/runc' })), ['Mount in container'], 'a container\'s own /usr/sbin/runc that started itself');
  assert.deepEqual(matching(set, mount({ ...runc, hostExe: false }, { pid: 568, comm: 'runc', exe: '/usr/sbin/runc' })), ['Mount in container'], 'hostExe false');
  assert.deepEqual(matching(set, mount({ pid: 9, comm: 'mount', exe: '/bin/mount', hostExe: true }, { pid: 568, comm: 'runc', exe: '/usr/sbin/runc' })), ['Mount in container'], 'exec\'d by runc (runc exec): not the runtime any more');
  const setns = (process: Ref, parent: Ref) => ({ ...event('setns', { nsType: 'CLONE_NEWNET', nsInode: 4026532252, ret: 0 }, { ...ctr, process }), parent });
  assert.deepEqual(matching(set, setns({ pid: 577, comm: 'runc:[1:CHILD]', exe: '/usr/bin/runc', hostExe: true }, { pid: 576, comm: 'runc:[0:PARENT]', exe: '/usr/bin/runc' })), []);
  assert.deepEqual(matching(set, setns({ pid: 577, comm: 'runc:[1:CHILD]', exe: '/usr/bin/runc' }, { pid: 576, comm: 'runc:[0:PARENT]', exe: '/usr/bin/runc' })), ['Namespace entered in container'], 'not known to be the host\'s binary');
  assert.deepEqual(matching(set, setns({ pid: 9, comm: 'nsenter', exe: '/usr/bin/nsenter' }, { pid: 8, comm: 'sh', exe: '/bin/sh' })), ['Namespace entered in container']);
  // podman's CNI lock is not a change to /etc; anything else it or others write there still is.
  assert.deepEqual(matching(set, open('/etc/cni/net.d/cni.lock', { flagNames: 'O_RDWR|O_CREAT|O_CLOEXEC' }, { comm: 'podman', exe: '/usr/bin/podman' })), []);
  assert.deepEqual(matching(set, open('/etc/cni/net.d/87-podman.conflist', {}, { comm: 'podman', exe: '/usr/bin/podman' })), ['Sensitive file modified']);
  assert.deepEqual(matching(set, open('/etc/cni/net.d/cni.lock', {}, { comm: 'vi' })), ['Sensitive file modified']);
});

test('the default rules evaluate without error on events that carry only what every event has', () => {
  // An event of a process the cache does not know has no comm or exe; a plain open is not `sensitive`; an
  // open has no `resolvedPath` unless paths are resolved. A rule reading such a field directly fails on it:
  // counted as an error and, worse, as no match (`!package_manager` failing hides a sensitive write by an
  // unknown process). The default rules must read every field that may be absent as optional.
  const set = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE)] });
  const ctr = { container: { id: 'a'.repeat(64), enrichment: 'pending' as const } };
  const failures: string[] = [];
  for (const r of set.rules) {
    for (const type of r.types ?? []) {
      for (const ret of [0, -1]) {
        for (const [what, extra] of [['host', {}], ['container', ctr]] as const) {
          for (const process of [{ pid: 5, unknown: ['process'] }, { pid: 5, comm: 'x', exe: '/x' }]) {
            const ev: OutputEvent = { type, time: '2026-11-23T10:00:00.000Z', ktimeNs: 1, process, ret, nr: 1, ...extra };
            try {
              r.match(set.context(ev));
            } catch (err) {
              failures.push(`${r.name} on a ${type} event (${what}, ret ${ret}, ${process.comm ?? 'unknown'}): ${(err as Error).message.split('\n')[0]}`);
            }
          }
        }
      }
    }
  }
  assert.deepEqual(failures, []);
  // And the sensitive write of a process nobody knows is still reported.
  const unknown: OutputEvent = { type: 'open', time: '2026-11-23T10:00:00.000Z', ktimeNs: 1, process: { pid: 5, unknown: ['process'] }, ret: 3, nr: 257, path: '/etc/passwd', write: true, sensitive: true };
  assert.deepEqual(matching(set, unknown), ['Sensitive file modified']);
});

test('lists (also of lists), macros, overrides, append, disabled and minPriority', () => {
  const set = inline(
    [
      { list: 'shells', items: ['bash', 'sh'] },
      { list: 'more_shells', items: ['shells', 'zsh'] },
      { list: 'shells', items: ['dash'], append: true },
      { macro: 'is_shell', condition: 'process.comm in more_shells' },
      { macro: 'root', condition: 'process.uid == 0' },
      rule('shell', 'is_shell'),
      rule('root shell', 'is_shell && root', { types: ['exec'] }),
      rule('quiet', 'true', { priority: 'debug' }),
      rule('off', 'true', { enabled: false }),
      { rule: 'shell', condition: 'process.comm == "zsh"', append: true },
      { rule: 'off', enabled: true },
      { rule: 'root shell', enabled: false },
    ],
    { minPriority: 'notice' },
  );
  assert.deepEqual([...set.lists], [['shells', ['bash', 'sh', 'dash']], ['more_shells', ['bash', 'sh', 'dash', 'zsh']]], 'a list naming a list takes its final items (appends included)');
  assert.deepEqual(set.rules.map((r) => [r.name, r.enabled]), [['shell', true], ['root shell', false], ['quiet', false], ['off', true]]);
  assert.equal(set.types(), undefined, 'a rule without types is about every type');
  assert.deepEqual(matching(set, event('exec', {}, { process: { pid: 1, comm: 'zsh', uid: 0 } })), ['shell', 'off']);
  assert.deepEqual(matching(set, event('exec', {}, { process: { pid: 1, comm: 'bash', uid: 0 } })), ['off'], 'append added a condition: bash is no longer enough');
  const mixed = inline([rule('any1', 'true'), rule('typed', 'true', { types: ['exec'] }), rule('any2', 'true')]);
  assert.deepEqual(mixed.rulesFor('exec').map((r) => r.name), ['any1', 'typed', 'any2'], 'rules about every type and about this one, in order of definition');
  assert.equal(mixed.rulesFor('exec'), mixed.rulesFor('exec'), 'merged once per type');
  assert.deepEqual(mixed.rulesFor('open').map((r) => r.name), ['any1', 'any2']);
  const d = inline([rule('a', 'true', { types: ['exec'] }), rule('b', 'true', { types: ['open', 'exec'] })], { disabled: ['a'] });
  assert.deepEqual([...d.types()!], ['open', 'exec']);
  assert.deepEqual(matching(d, event('exec')), ['b']);
  assert.deepEqual(matching(d, event('exit')), []);
  assert.notEqual(d.digest, inline([rule('a', 'true', { types: ['exec'] }), rule('b', 'true', { types: ['open', 'exec'] })]).digest, 'the digest follows what is enabled');
});

test('rules are selected by tag: only those with an enabled tag, minus those with a disabled one (Falco -t, -T)', () => {
  const items = () => [rule('fs', 'true', { tags: ['filesystem', 'mitre_persistence'] }), rule('net', 'true', { tags: ['network'] }), rule('both', 'true', { tags: ['network', 'filesystem'] }), rule('none', 'true')];
  const on = (o: Record<string, unknown>) => inline(items(), o).rules.filter((r) => r.enabled).map((r) => r.name);
  assert.deepEqual(on({}), ['fs', 'net', 'both', 'none']);
  assert.deepEqual(on({ enabledTags: ['filesystem'] }), ['fs', 'both'], 'a rule without tags is not selected');
  assert.deepEqual(on({ disabledTags: ['network'] }), ['fs', 'none']);
  assert.deepEqual(on({ enabledTags: ['filesystem'], disabledTags: ['network'] }), ['fs'], 'disabled tags apply after enabled ones');
  assert.deepEqual(on({ enabledTags: ['filesystem', 'network'], disabled: ['net'] }), ['fs', 'both']);
  assert.deepEqual(issuesOf(() => inline(items(), { disabledTags: ['netwrok'] })), [{ path: 'rules.disabledTags', message: 'no rule has the tag "netwrok" (tags: filesystem, mitre_persistence, network)' }]);
  assert.equal(issuesOf(() => inline(items(), { enabledTags: ['x'] }))[0]!.path, 'rules.enabledTags');
  // The defaults: every rule has tags, and a run on filesystem rules alone turns the others off.
  const defaults = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE)], enabledTags: ['filesystem'] });
  assert.ok(defaults.rules.every((r) => r.enabled === r.tags.includes('filesystem')));
  assert.ok(defaults.rules.some((r) => r.enabled) && defaults.rules.some((r) => !r.enabled));
});

test('macros are evaluated lazily, once per event, whatever number of rules use them', () => {
  let calls = 0;
  const set = inline([{ macro: 'm', condition: 'event.n > 0' }, rule('r1', 'false && m'), rule('r2', 'm'), rule('r3', 'm && m')]);
  const ev = event('exec', { n: 1 });
  const ctx = set.context(ev);
  Object.defineProperty(ev, 'n', { get: () => (calls++, 1), enumerable: true });
  assert.deepEqual(set.rulesFor('exec').map((r) => r.match(ctx)), [false, true, true]);
  assert.equal(calls, 1);
});

test('CEL: missing parts are empty, has() and optionals test for fields, numbers compare with ints', () => {
  const set = inline([
    rule('in container', 'has(container.id)'),
    rule('pod', 'pod.?namespace.orValue("") == "prod"'),
    rule('uid', 'process.uid in [0, 1000] && event.ret < 0'),
    rule('argv', 'process.argv.exists(a, a.startsWith("-i"))'),
    rule('ancestry', '1 in ancestors && size(ancestors) == 1'),
    rule('regex', 'process.exe.matches("^/usr/(s)?bin/")'),
  ]);
  assert.deepEqual(matching(set, event('exec', { ret: -2 })), ['uid', 'argv', 'ancestry', 'regex']);
  assert.deepEqual(matching(set, event('exec', { ret: 0 }, { container: { id: 'c', enrichment: 'done' }, pod: { uid: 'u', namespace: 'prod' }, ancestors: undefined })), ['in container', 'pod', 'argv', 'regex']);
  // A field an event lacks, used without has(): an evaluation error, which the engine counts as no match.
  const bad = inline([rule('strict', 'container.name == "web"')]);
  assert.throws(() => bad.rulesFor('exec')[0]!.match(bad.context(event('exec'))), /No such key: name/);
});

test('exceptions (Falco\'s): tuples of fields and comparisons exempt events, later files add values, missing fields exempt nothing', () => {
  const base = [
    { list: 'trusted', items: ['/usr/bin/trusted'] },
    rule('write', 'event.ret >= 0', {
      types: ['open'],
      exceptions: [
        { name: 'writers', fields: ['process.exe', 'event.path'], comps: ['=', 'pmatch'], values: [['/usr/bin/apk', ['/usr/lib/apk', '/etc/apk/']]] },
        { name: 'images', fields: 'container.image' }, // one field: comps default to "in", values are a list
        { name: 'comm_prefix', fields: 'process.comm', comps: 'startswith', values: ['backup-'] },
        { name: 'exe_list', fields: ['process.exe'], comps: ['in'], values: [['trusted']] }, // a list's name
        { name: 'argv', fields: ['process.argv', 'process.uid', 'event.path'], comps: ['intersects', '<', 'icontains'], values: [[['--safe', 'x'], 1000, 'TMP']] },
        { name: 'deep', fields: ['event.meta.origin', 'pod.namespace'], comps: ['matches', '!='], values: [['^ci-', 'prod']] },
      ],
    }),
  ];
  const set = inline(base);
  const open = (path: string, process: Record<string, unknown> = {}, parts: Partial<OutputEvent> = {}, fields: Record<string, unknown> = {}) =>
    matching(set, event('open', { path, ret: 3, ...fields }, { process: { pid: 7, comm: 'vi', exe: '/usr/bin/vi', argv: ['vi'], uid: 0, ...process }, ...parts }));
  assert.deepEqual(open('/usr/lib/apk/db'), ['write'], 'not apk: no exception');
  assert.deepEqual(open('/usr/lib/apk/db', { exe: '/usr/bin/apk' }), [], 'apk below one of its prefixes');
  assert.deepEqual(open('/etc/apk', { exe: '/usr/bin/apk' }), [], 'pmatch: the prefix itself (a trailing / or not)');
  assert.deepEqual(open('/usr/lib/apkx', { exe: '/usr/bin/apk' }), ['write'], 'pmatch is by path component, not by string prefix');
  assert.deepEqual(open('/etc/shadow', { exe: '/usr/bin/apk' }), ['write'], 'both fields of the tuple must match');
  assert.deepEqual(open('/x', {}, {}), ['write']);
  assert.deepEqual(open('/x', { comm: 'backup-db' }), [], 'startswith');
  assert.deepEqual(open('/x', { exe: '/usr/bin/trusted' }), [], 'a list named as the value of in');
  assert.deepEqual(open('/tmp/a', { argv: ['tool', '--safe'], uid: 999 }), [], 'intersects, <, icontains together');
  assert.deepEqual(open('/tmp/a', { argv: ['tool', '--safe'], uid: 1000 }), ['write'], 'one field of three differs');
  assert.deepEqual(open('/x', { comm: undefined }), ['write'], 'a missing field exempts nothing and is no evaluation error');
  assert.deepEqual(open('/x', {}, { pod: { uid: 'u', namespace: 'dev' } }, { meta: { origin: 'ci-42' } }), [], 'nested fields, each level guarded');
  assert.deepEqual(open('/x', {}, { pod: { uid: 'u', namespace: 'prod' } }, { meta: { origin: 'ci-42' } }), ['write']);
  assert.deepEqual(open('/x', {}, {}, { meta: { origin: 'ci-42' } }), ['write'], 'no pod: != has nothing to compare, so no exemption');
  // Values added from a later file: to an existing exception by name, and a new exception.
  const site = inline([
    ...base,
    { list: 'site_images', items: ['registry.local/backup'] },
    { rule: 'write', append: true, exceptions: [{ name: 'images', values: ['registry.local/agent', 'site_images'] }, { name: 'editors', fields: 'process.comm', comps: 'in', values: ['vi'] }] },
  ]);
  const ctr = (image: string) => ({ container: { id: 'c'.repeat(64), image, enrichment: 'done' as const } });
  assert.deepEqual(matching(set, event('open', { path: '/x', ret: 3 }, { ...ctr('registry.local/agent'), process: { pid: 1, comm: 'cp' } })), ['write']);
  assert.deepEqual(matching(site, event('open', { path: '/x', ret: 3 }, { ...ctr('registry.local/agent'), process: { pid: 1, comm: 'cp' } })), [], 'appended value');
  assert.deepEqual(matching(site, event('open', { path: '/x', ret: 3 }, { ...ctr('registry.local/backup'), process: { pid: 1, comm: 'cp' } })), [], 'a list named among the values');
  assert.deepEqual(matching(site, event('open', { path: '/x', ret: 3 }, { process: { pid: 1, comm: 'vi' } })), [], 'appended exception');
  assert.deepEqual(site.rules[0]!.exceptions.find((e) => e.name === 'images')!.values, [[['registry.local/agent', 'site_images']]]);
  assert.notEqual(site.digest, set.digest, 'the digest follows the exceptions');
  // Empty exceptions (the default set's hooks) exempt nothing.
  assert.deepEqual(matching(inline([rule('r', 'true', { exceptions: [{ name: 'none', fields: ['process.exe'] }] })]), event('exec')), ['r']);
  // The default set's hooks take a site's values.
  const defaults = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE), { name: 'site.yaml', items: [{ rule: 'Execution from /dev/shm', append: true, exceptions: [{ name: 'installers', fields: 'process.exe', comps: 'in', values: ['/dev/shm/setup'] }] }, { rule: 'Root privileges gained', append: true, exceptions: [{ name: 'programs', values: ['/usr/local/bin/become'] }] }] }] });
  const shm = (exe: string) => matching(defaults, event('exec', {}, { process: { pid: 5, comm: 'x', exe, argv: ['x'] } }));
  assert.deepEqual(shm('/dev/shm/setup'), []);
  assert.deepEqual(shm('/dev/shm/other'), ['Execution from /dev/shm']);
  const root = (exe: string) => matching(defaults, event('creds', { old: { euid: 1000 }, new: { euid: 0 }, syscall: 'setuid' }, { process: { pid: 5, comm: 'become', exe } }));
  assert.deepEqual(root('/usr/local/bin/become'), []);
  assert.deepEqual(root('/tmp/become'), ['Root privileges gained']);
});

test('an exception field of alternatives compares the first the event has: an allowlist of absolute paths covers paths given absolute and resolved ones', () => {
  const set = inline([
    rule('write', 'event.ret >= 0', {
      types: ['open'],
      exceptions: [{ name: 'writers', fields: ['process.exe', 'event.resolvedPath | event.path'], comps: ['=', 'pmatch'], values: [['/usr/sbin/agent', ['/etc/agent']]] }],
    }),
  ]);
  const open = (fields: Record<string, unknown>, exe = '/usr/sbin/agent') => matching(set, event('open', { ret: 3, ...fields }, { process: { pid: 7, comm: 'agent', exe } }));
  assert.deepEqual(open({ path: '/etc/agent/conf' }), [], 'given absolute: no resolvedPath, path compared');
  assert.deepEqual(open({ path: 'conf', resolvedPath: '/etc/agent/conf' }), [], 'given relative: resolvedPath compared');
  assert.deepEqual(open({ path: '/etc/agent/conf', resolvedPath: '/etc/shadow' }), ['write'], 'resolvedPath first: a symlinked or fd path is judged by where it resolved');
  assert.deepEqual(open({ path: '/etc/agent/conf', resolvedPath: '' }), [], 'an empty member counts as absent, as in output placeholders');
  assert.deepEqual(open({ path: '/etc/agent/conf' }, '/usr/bin/vi'), ['write'], 'both fields of the tuple still');
  assert.deepEqual(open({}), ['write'], 'none of the alternatives: nothing to compare, no exemption');
  // The default set's hook takes alternatives: a site's writer is exempt for `echo x > /etc/agent/conf` too.
  const defaults = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE), { name: 'site.yaml', items: [{ rule: 'Sensitive file modified', append: true, exceptions: [{ name: 'writers', values: [['/usr/sbin/agent', ['/etc/agent']]] }] }] }] });
  const sensitive = (fields: Record<string, unknown>, exe: string) => matching(defaults, event('open', { ret: 3, sensitive: true, write: true, ...fields }, { process: { pid: 7, comm: 'agent', exe } }));
  assert.deepEqual(sensitive({ path: '/etc/agent/conf' }, '/usr/sbin/agent'), []);
  assert.deepEqual(sensitive({ path: 'conf', resolvedPath: '/etc/agent/conf' }, '/usr/sbin/agent'), []);
  assert.deepEqual(sensitive({ path: '/etc/passwd' }, '/usr/sbin/agent'), ['Sensitive file modified']);
  // A bad alternative is refused like a bad field, with the whole field named.
  const issues = issuesOf(() => inline([rule('r', 'true', { exceptions: [{ name: 'e', fields: ['event.resolvedPath|fd.name'] }] })]));
  assert.equal(issues.length, 1, JSON.stringify(issues));
  assert.match(issues[0]!.message, /"event\.resolvedPath\|fd\.name" is not a field path: .* or as alternatives such as event\.resolvedPath\|event\.path/);
});

test('every problem in a rule set is reported with where it is, and nothing is loaded', () => {
  const cases: [unknown, RegExp][] = [
    [{ list: 'a' }, /^test item 1 \(list "a"\)\.items: expected a list of strings and numbers, got undefined$/],
    [{ list: 'process', items: [] }, /\.list: a list name must be an identifier/],
    [{ list: 'a-b', items: [] }, /\.list: a list name must be an identifier/],
    [{ macro: 'm', condition: 'm2' }, /\(macro "m"\)\.condition: Unknown variable: m2 \(at column 1\)/],
    [rule('r', 'process.comm =='), /\(rule "r"\)\.condition: Unexpected token: EOF \(at column 16\)/],
    [rule('r', 'process.comm = "x"'), /\.condition: Unexpected character: = \(at column 14\)/],
    [rule('r', '1 + 2'), /\.condition: the condition is of type int; it must be true or false/],
    [rule('r', 'true', { priority: 'loud' }), /\.priority: expected one of emergency, alert, .*, got "loud"/],
    [rule('r', 'true', { types: ['exec', 'execve'] }), /\.types: unknown event type "execve" \(known: exec,/],
    [rule('r', 'true', { types: [] }), /\.types: expected a non-empty list of event types/],
    [rule('r', 'true', { output: 'x {process comm}' }), /\.output: placeholder \{process comm\}: expected a field path/],
    [rule('r', 'true', { output: 'x } y' }), /\.output: unmatched brace/],
    [rule('r', 'true', { when: 'now' }), /\(rule "r"\): unknown field "when" \(known: rule, desc,/],
    [{ rule: 'nothing before', enabled: false }, /no earlier rule "nothing before" to turn off/],
    [rule('r', 'true', { append: true }), /append: no earlier rule "r" to append to/],
    [{ rule: 'r', list: 'l', items: [] }, /has list and rule: an item is one list, one macro or one rule/],
    [{ priority: 'warning' }, /has none of list, macro, rule \(fields: priority\)/],
    ['just text', /test item 1: expected a mapping with list, macro or rule, got "just text"/],
    [rule('r', 'true', { exceptions: { name: 'e' } }), /\(rule "r"\)\.exceptions: expected a list of exceptions/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['process.comm'], why: 1 }] }), /\.exceptions\.0: unknown field "why" \(known: name, fields, comps, values\)/],
    [rule('r', 'true', { exceptions: [{ fields: ['process.comm'] }] }), /\.exceptions\.0\.name: expected a name, got undefined/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: [] }] }), /\.exceptions\.0 \("e"\)\.fields: expected a field path or a non-empty list of them/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['proc.name'] }] }), /\.fields: "proc\.name" is not a field path: write it as <event\|process\|/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['process.comm', 'event.path'], comps: ['='] }] }), /\.comps: expected a list of 2 comparisons, one per field/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: 'process.comm', comps: 'glob' }] }), /\.comps: unknown comparison "glob" \(known: =, !=,/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['process.comm', 'event.path'], values: [['a']] }] }), /\.exceptions\.0 \("e"\)\.values\.0: expected a list of 2 values \(process\.comm, event\.path\), got a list/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['event.path'], comps: ['startswith'], values: [[5]] }] }), /\.values\.0\.0: event\.path startswith: expected a string, got 5/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['event.path'], comps: ['in'], values: [[{ a: 1 }]] }] }), /\.values\.0\.0: event\.path in: expected a list of strings and numbers, or a list's name, got a mapping/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: ['event.path'], comps: ['in'], values: [['no_such_list']] }] }), /\.values\.0\.0: event\.path in: no list named "no_such_list"/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: 'process.exe', comps: 'matches', values: ['(unclosed'] }] }), /\.values\.0: process\.exe matches: not a regular expression/],
    [rule('r', 'true', { exceptions: [{ name: 'e', fields: 'process.exe' }, { name: 'e', fields: 'process.comm' }] }), /\.exceptions\.1 \("e"\)\.name: a second exception named "e" in this item/],
  ];
  for (const [item, want] of cases) {
    const issues = issuesOf(() => inline([item]));
    assert.equal(issues.length, 1, `${JSON.stringify(item)}: ${JSON.stringify(issues)}`);
    assert.match(`${issues[0]!.path}: ${issues[0]!.message}`, want, JSON.stringify(item));
  }
  // Several problems: all of them, in one error.
  const many = issuesOf(() => inline([rule('a', '1 +'), { macro: 'x', condition: 'y' }, { macro: 'y', condition: 'x' }, rule('b', 'true', { priority: 'no' })]));
  assert.deepEqual(many.map((i) => i.path), ['test item 4 (rule "b").priority', 'test item 2 (macro "x").condition', 'test item 3 (macro "y").condition', 'test item 1 (rule "a").condition']);
  assert.match(many[1]!.message, /macros use each other in a cycle: x → y → x/);
  assert.deepEqual(issuesOf(() => inline([rule('a', 'true')], { disabled: ['b'] })), [{ path: 'rules.disabled', message: 'no rule named "b" (rules: "a")' }]);
  // An append may only add values to an exception that exists, and must add something.
  const withE = rule('a', 'true', { exceptions: [{ name: 'e', fields: 'process.exe' }] });
  assert.deepEqual(issuesOf(() => inline([withE, { rule: 'a', append: true, exceptions: [{ name: 'e', fields: 'process.comm', values: ['x'] }] }])), [{ path: 'test item 2 (rule "a").exceptions.0 ("e")', message: 'exception "e" exists (test item 1 (rule "a").exceptions.0 ("e")): a later item may only add values to it, not fields or comps' }]);
  assert.deepEqual(issuesOf(() => inline([withE, { rule: 'a', append: true }])), [{ path: 'test item 2 (rule "a")', message: 'append: give a condition or exceptions to add' }]);
  assert.deepEqual(issuesOf(() => inline([withE, { rule: 'a', append: true, exceptions: [{ name: 'f', fields: ['event.path'], comps: ['in'], values: [['nope']] }] }])), [{ path: 'test item 2 (rule "a").exceptions.0 ("f").values.0.0', message: 'event.path in: no list named "nope"; write the values as a list ([a, b]) or define the list' }]);
  assert.deepEqual(issuesOf(() => compileRules({ sources: [{ name: 'f.yaml', items: { rule: 'x' } }] })), [{ path: 'f.yaml', message: 'expected a list of items (- list: …, - macro: …, - rule: …), got a mapping' }]);
});

test('rule files: YAML errors with their line, unreadable files, and the configuration naming where each problem is', (t) => {
  const dir = tempDir(t, 'vigil-rules-');
  const f = path.join(dir, 'r.yaml');
  fs.writeFileSync(f, '- rule: x\n  condition: true\n  output: "a\n');
  assert.match(JSON.stringify(issuesOf(() => readRuleFile(f))), /r\.yaml line \d+, column \d+/);
  fs.writeFileSync(f, Buffer.from([0x2d, 0x20, 0xff, 0x0a]));
  assert.deepEqual(issuesOf(() => readRuleFile(f, 'label')), [{ path: 'label', message: 'not valid UTF-8; save the file as UTF-8' }]);
  assert.match(issuesOf(() => readRuleFile(path.join(dir, 'none.yaml')))[0]!.message, /cannot read it: ENOENT/);
  fs.writeFileSync(f, stringify([rule('from file', 'process.comm ==')]));
  const issues = issuesOf(() => validateConfig({ rules: { files: [f], inline: [rule('ok', 'true'), rule('inline', 'true', { types: ['nope'] })], minPriority: 'warning' } }));
  assert.deepEqual(issues.map((i) => i.path), ['rules.inline.1 (rule "inline").types', `rules.files.0 (${f}) item 1 (rule "from file").condition`]);
  assert.deepEqual(issuesOf(() => validateConfig({ rules: { minPriority: 'loud', queue: 0 } })).map((i) => i.path), ['rules.minPriority', 'rules.queue']);
});

test('outputs: placeholders from the event and its parts, <NA> for what it lacks, literal braces', () => {
  const f = compileOutput('{{x}} {process.comm} {event.path} {path} {process.argv} {ancestors[0]} {container.name} {event.old}', assert.fail)!;
  assert.equal(f(event('open', { path: '/etc/x', old: { a: 1 } })), '{x} bash /etc/x /etc/x bash -i 1 <NA> {"a":1}');
});

test('outputs: a placeholder\'s alternatives print the first the event has; each must be a field path', () => {
  const f = compileOutput('{event.resolvedPath|event.path} {event.nope | container.name}', assert.fail)!;
  assert.equal(f(event('open', { path: 'rel', resolvedPath: '/abs/rel' })), '/abs/rel <NA>');
  assert.equal(f(event('open', { path: '/etc/shadow' })), '/etc/shadow <NA>', 'an absolute path is not resolved again');
  assert.equal(f(event('open', { path: '/etc/shadow', resolvedPath: '' })), '/etc/shadow <NA>', 'empty is absent');
  const bad: string[] = [];
  assert.equal(compileOutput('{event.path|}', (m) => bad.push(m)), undefined);
  assert.match(bad[0]!, /alternatives such as \{event\.resolvedPath\|event\.path\}/);
  // The default rules' file outputs: a read of an absolute secret path is not resolved by the kernel.
  const set = compileRules({ sources: [readRuleFile(DEFAULT_RULES_FILE)] });
  const read = event('open', { path: '/etc/shadow', ret: 3, write: false, secret: true, flagNames: 'O_RDONLY' }, { process: { pid: 5, comm: 'cat' } });
  const alert = set.rules.find((r) => r.name === 'Read sensitive file untrusted')!.format(read);
  assert.match(alert, /^Sensitive file opened for reading: \/etc\/shadow by cat/);
});

test('the engine: a subscriber only of its rules\' types; alerts through emit; errors counted; reloads keep the queue', () => {
  const router = new Router();
  const alerts: OutputEvent[] = [];
  const engine = new RuleEngine({ router, emit: (a) => alerts.push(a), queue: 3 });
  assert.equal(router.wants('exec'), false);
  engine.setRules(inline([rule('shell', 'process.comm == "bash"', { types: ['exec'], tags: ['t'] }), rule('strict', 'container.name == "x"', { types: ['exec'] })]));
  assert.deepEqual([router.size, router.wants('exec'), router.wants('open')], [1, true, false], 'no object is built for types no rule is about');
  const ev = event('exec', { filename: '/bin/bash' });
  router.publish(ev, '');
  engine.flush();
  assert.equal(alerts.length, 1);
  assert.deepEqual(alerts[0], { type: 'alert', time: ev.time, ktimeNs: 123, process: ev.process, parent: ev.parent, ancestors: [1], rule: 'shell', priority: 'warning', output: 'shell: bash', tags: ['t'], event: { type: 'exec', filename: '/bin/bash' } });
  assert.match(formatText(alerts[0]!, false), /alert .* 42 bash\(ann\) \[warning\] shell: shell: bash$/);
  // An alert published back is never checked again.
  router.publish(alerts[0]!, '');
  engine.flush();
  let st = engine.status()!;
  assert.deepEqual([st.received, st.alerts, st.errors, st.dropped], [1, 1, 1, 0], 'the alert was not given to the engine (not its type)');
  assert.match(st.perRule.find((r) => r.name === 'strict')!.lastError!, /exec event: No such key: name/);
  // Overflow of its queue: counted.
  for (let i = 0; i < 5; i++) router.publish(ev, '');
  // A reload while events wait: they stay queued and are checked by the new rules.
  engine.setRules(inline([rule('shell', 'true', { types: ['exec', 'open'] })]));
  assert.equal(router.wants('open'), true);
  engine.flush();
  st = engine.status()!;
  assert.deepEqual([st.received, st.dropped, st.alerts, alerts.length], [4, 2, 4, 4]);
  assert.deepEqual(st.perRule.map((r) => [r.name, r.enabled, r.matches]), [['shell', true, 4], ['strict', false, 0]], 'counters of a rule survive a reload; a removed rule shows as off');
  // No rule left: no subscription, so no event objects for the rules' sake; counters stay.
  engine.setRules(inline([rule('shell', 'true', { enabled: false })]));
  assert.deepEqual([router.size, router.wants('exec')], [0, false]);
  assert.equal(engine.status()!.dropped, 2);
  assert.deepEqual(alertOf(inline([rule('x', 'true')]).rules[0]!, { type: 'open', time: 't', ktimeNs: 1, path: '/p' }), { type: 'alert', time: 't', ktimeNs: 1, rule: 'x', priority: 'warning', output: 'x: <NA>', event: { type: 'open', path: '/p' } });
});

test('an in-process agent raises alerts into its sinks, reloads edited rule files all or nothing, and serves them', async (t) => {
  const dir = tempDir(t, 'vigil-rules-agent-');
  const rules = path.join(dir, 'rules.yaml');
  const config = path.join(dir, 'vigil.yaml');
  const mark = (n: string) => rule(`mark ${n}`, `process.?argv.orValue([]).exists(a, a == "vigil-rule-${n}")`, { types: ['exec'], output: `marked {process.argv} by {parent.comm}` });
  const noticed = rule('noticed one', 'process.?argv.orValue([]).exists(a, a == "vigil-rule-one")', { types: ['exec'], priority: 'notice' });
  fs.writeFileSync(rules, stringify([mark('one'), noticed]));
  // A file sink that takes only alerts of warning and worse (its selection), beside the test's sink of everything.
  const alerts = path.join(dir, 'alerts.jsonl');
  fs.writeFileSync(config, stringify({ process: { mode: 'procfs' }, containers: { enabled: false }, events: { process: { exec: true, exit: false }, files: false, network: false, other: false }, rules: { defaults: false, files: [rules] }, sinks: { file: { path: alerts, types: ['alert'], minPriority: 'warning' } } }));
  const ta = await startTestAgent(t, { configFile: config });
  const run = (n: string) => new Promise<void>((resolve, reject) => spawn('/bin/sh', ['-c', 'sleep 0.02', `vigil-rule-${n}`]).on('exit', () => resolve()).on('error', reject));
  const alertFor = (n: string) => (e: OutputEvent) => e.type === 'alert' && e.rule === `mark ${n}`;

  await run('one');
  const a = await ta.sink.waitFor(alertFor('one'), 'the alert');
  assert.equal(a.priority, 'warning');
  assert.deepEqual((a.process as { argv: string[] }).argv, ['/bin/sh', '-c', 'sleep 0.02', 'vigil-rule-one']);
  assert.match(String(a.output), /^marked \/bin\/sh -c sleep 0\.02 vigil-rule-one by /);
  assert.equal((a.event as { type: string }).type, 'exec');
  const exec = ta.sink.find((e) => e.type === 'exec' && (e.process as { argv?: string[] }).argv?.includes('vigil-rule-one') === true);
  assert.ok(exec && ta.sink.events.indexOf(exec) < ta.sink.events.indexOf(a), 'the event goes out before its alert');

  // The file edited, the configuration not: a reload reads the file again and applies it.
  fs.writeFileSync(rules, stringify([mark('two')]));
  const r = ta.agent.reload();
  assert.deepEqual(r.changed, ['rules.files (contents)']);
  await run('one');
  await run('two');
  await ta.sink.waitFor(alertFor('two'), 'the new rule\'s alert');
  ta.agent.drain();
  assert.equal(ta.sink.events.filter(alertFor('one')).length, 1, 'the old rule is gone');

  // A broken edit: rejected whole, the rules in force stay.
  fs.writeFileSync(rules, stringify([mark('three'), rule('broken', 'process.comm ==')]));
  assert.throws(() => ta.agent.reload(), (e: Error) => e instanceof ConfigError && /rules\.files\.0 .* item 2 \(rule "broken"\)\.condition: Unexpected token/.test(e.message));
  await run('two');
  ta.agent.drain();
  await ta.sink.waitFor((e) => alertFor('two')(e) && ta.sink.events.filter(alertFor('two')).length === 2, 'the rule in force still fires');

  // The API lists the rules with their counters; `vigil rules` shows them.
  await ta.api();
  const body = await new Promise<{ active: boolean; summary: { alerts: number }; rules: { name: string; matches: number }[] }>((resolve, reject) => {
    http.get({ socketPath: ta.socket, path: '/v1/rules' }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d)).on('end', () => resolve(JSON.parse(s))).on('error', reject);
    }).on('error', reject);
  });
  assert.equal(body.active, true);
  assert.deepEqual(body.rules.map((x) => [x.name, x.matches]), [['mark two', 2]]);
  assert.ok(body.summary.alerts >= 3);
  const cli = await runCli(['rules', '--socket', ta.socket]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /on\s+warning\s+2\s+0\s+exec\s+mark two\s+-\n/, 'a rule without tags: "-" in the last column');
  const st = ta.agent.status();
  assert.equal(st.rules!.enabled, 1);

  await ta.agent.stop();
  const acc = ta.agent.accounting();
  assert.ok(acc.final && acc.balanced, 'alerts are synthetic events: the accounting still balances');
  const all = ta.sink.events.filter((e) => e.type === 'alert');
  assert.equal(acc.pipeline.synthetic, all.length);
  assert.ok(all.some((e) => e.rule === 'noticed one'), 'the notice alert was raised');
  // The selecting file sink: the warning alerts only, in order; everything else skipped, counted, not dropped.
  const inFile = fs.readFileSync(alerts, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as OutputEvent);
  assert.deepEqual(inFile.map((e) => [e.rule, e.ktimeNs]), all.filter((e) => e.priority === 'warning').map((e) => [e.rule, e.ktimeNs]));
  const f = acc.sinks.file!;
  assert.deepEqual([f.received, f.sent, f.skipped, f.droppedTotal, f.queued], [acc.pipeline.events + acc.pipeline.synthetic, inFile.length, acc.pipeline.events + acc.pipeline.synthetic - inFile.length, 0, 0]);
});

test('vigil rules check: 0 for good files, 2 with every problem for bad ones', async (t) => {
  const dir = tempDir(t, 'vigil-rules-cli-');
  const good = path.join(dir, 'good.yaml');
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(good, stringify([{ rule: 'Terminal shell in container', enabled: false }, rule('mine', 'in_container', { types: ['exec'] })]));
  fs.writeFileSync(bad, stringify([rule('x', 'in_container')]));
  const ok = await runCli(['rules', 'check', good]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: \d+ rules \(\d+ on\), \d+ lists, \d+ macros; about/);
  const alone = await runCli(['rules', 'check', '--no-defaults', bad]);
  assert.equal(alone.status, 2);
  assert.match(alone.stderr, /bad\.yaml item 1 \(rule "x"\)\.condition: Unknown variable: in_container/);
  const withDefaults = await runCli(['rules', 'check', '--json', bad]);
  assert.equal(withDefaults.status, 0, 'the default set defines the macro');
  assert.equal(JSON.parse(withDefaults.stdout).ok, true);
  // Warnings (lint.ts) do not fail the check: printed on stderr, counted on stdout, listed in --json.
  assert.equal(ok.stderr, '', 'the good file and the defaults warn about nothing');
  const typo = path.join(dir, 'typo.yaml');
  fs.writeFileSync(typo, stringify([rule('typo', 'process.name == "sh"', { types: ['exec'] })]));
  const warned = await runCli(['rules', 'check', typo]);
  assert.equal(warned.status, 0, warned.stderr);
  assert.match(warned.stderr, /^vigil rules check: warning: .*typo\.yaml item 1 \(rule "typo"\)\.condition: process\.name: process has no member "name"; did you mean "comm"\?\n$/);
  assert.match(warned.stdout, /; 1 warning\n$/);
  const warnedJson = JSON.parse((await runCli(['rules', 'check', '--json', typo])).stdout);
  assert.equal(warnedJson.warnings.length, 1);
  assert.match(warnedJson.warnings[0].message, /^process\.name:/);
});
