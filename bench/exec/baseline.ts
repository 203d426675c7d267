// bench/exec: what the agent's process weighs before it does anything: the modules bench/exec/agent.ts loads
// (the process resolver with the BPF manager, koffi and libbpf bindings, the scrubber, user names, the output
// code), imported and nothing started. Run it with NODE_COMPILE_CACHE set to see what Node's type stripping
// costs: with a warm compile cache, Node loads the stripped sources from disk and never starts its stripper.
//
// usage: node bench/exec/baseline.ts    Prints one JSON line: rss, heapUsed, heapTotal (bytes).
import fs from 'node:fs';
import '../../src/process/resolver.ts';
import '../../src/process/users.ts';
import './output.ts';

const status = fs.readFileSync('/proc/self/status', 'utf8');
const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
const m = process.memoryUsage();
process.stdout.write(`${JSON.stringify({ rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), heapUsed: m.heapUsed, heapTotal: m.heapTotal })}\n`);
