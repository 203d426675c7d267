// Secret scrubbing for exec events: argv, env and free text pass through here before any sink sees them.
// The rules are data (ScrubConfig), compiled once into regexes and lookup tables, so the cost per exec is a few
// map lookups and short regex scans per argument; an argv with nothing to hide is returned as the same array.
import { InvalidArgumentError } from '../bpf/errors.ts';

/** A flag whose value is a secret, e.g. mysql's `-pSECRET` or sshpass's `-p SECRET`. */
export interface ValueFlagRule {
  /** Flags as typed: "-p", "--password", "-passin" (openssl), "/p:" (freerdp; a flag ending in ':' or '='
   *  takes its value glued on). */
  flags: string[];
  /** Programs (basenames) the rule is limited to; "prog sub" also needs the word `sub` between the program
   *  and the flag ("docker login" masks `docker login -p x` but not `docker run -p 80:80`). Omitted: any
   *  program. */
  programs?: string[];
  /** The value may be glued on: "-pSECRET", "--password=SECRET". Default true. */
  attached?: boolean;
  /** The value may be the next argument: "-p SECRET". Default true. */
  next?: boolean;
  /** Keep the value up to and including this separator and mask the rest: ':' keeps curl's user in
   *  `-u user:password`, '=' keeps the key in kubectl's `--from-literal=key=value`. A value without the
   *  separator is not masked (curl `-u user` prompts for the password). */
  keepBefore?: string;
}

export interface ScrubConfig {
  /** Case-insensitive regex fragments of secret-looking names ("password", "token", "api[-_.]?key", ...),
   *  searched in flag names (`--db-password`), assignment names (`GITHUB_TOKEN=`), header and JSON keys. */
  secretNames: string[];
  /** Case-insensitive regex fragments of names that look secret but name something else: a file, a prompt,
   *  a length (`--password-file`, `--password-stdin`, `--ask-pass`). They win over secretNames. */
  safeNames: string[];
  /** Flags whose value is secret, optionally only for some programs. */
  valueFlags: ValueFlagRule[];
  /** Programs ("prog" or "prog sub") whose positionals come as name/value pairs: after a positional with a
   *  secret name, the next argument is masked (`aws configure set aws_secret_access_key X`,
   *  `git config github.token X`). */
  positionalPairs: string[];
  /** Programs whose `-c` (or `--command`) takes a command string that is scrubbed as a command line. */
  shells: string[];
  /** Case-sensitive regex fragments of self-identifying secrets (token prefixes, JWTs, PEM private keys),
   *  masked wherever they appear. */
  tokenPatterns: string[];
  /** Env variables whose VALUES are kept (a trailing `*` matches a prefix); every other variable is
   *  reported by name only. Case-sensitive, as env names are. */
  envAllow: string[];
  /** Replacement text. */
  mask: string;
}

export interface EnvVar {
  name: string;
  /** Absent when the value is withheld. */
  value?: string;
}

// Programs that take mysql's `-pSECRET` (attached only: a bare -p prompts and the next word is the database).
const MYSQL_LIKE = [
  'mysql', 'mysqldump', 'mysqladmin', 'mysqlcheck', 'mysqlimport', 'mysqlshow', 'mysqlslap', 'mysqlpump',
  'mysqlbinlog', 'mysqlsh', 'mariadb', 'mariadb-dump', 'mariadb-admin', 'mariadb-check', 'mariadb-import',
  'mariadb-show', 'mariadb-slap', 'mariadb-binlog',
];
const SNMP = [
  'snmpwalk', 'snmpbulkwalk', 'snmpget', 'snmpgetnext', 'snmpbulkget', 'snmpset', 'snmptrap', 'snmpinform',
  'snmptable', 'snmpdf', 'snmpstatus', 'snmpdelta', 'snmpnetstat',
];
const LDAP = [
  'ldapsearch', 'ldapadd', 'ldapmodify', 'ldapdelete', 'ldapmodrdn', 'ldapwhoami', 'ldappasswd', 'ldapcompare',
  'ldapexop',
];
const MONGO = [
  'mongo', 'mongosh', 'mongodump', 'mongorestore', 'mongoexport', 'mongoimport', 'mongostat', 'mongotop',
  'mongofiles',
];

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The default rules; docs/process-scrubbing.md explains each. Frozen: copy and extend it. */
export const DEFAULT_SCRUB_CONFIG: ScrubConfig = deepFreeze({
  secretNames: [
    'passw(?:or)?d', // password, passwd, DB_PASSWORD, keyStorePassword
    'pass(?:$|[-_.])', // --pass, DB_PASS, smtp.pass.x, dbPass (the right boundary keeps "passenger" out)
    'passphrase',
    'pwd$', // DB_PWD, Pwd= in connection strings (plain PWD/OLDPWD are in safeNames)
    'secret', // client_secret, AWS_SECRET_ACCESS_KEY, --secret
    'token', // GITHUB_TOKEN, --token, access_token, _authToken
    'api[-_.]?key', // api_key, X-Api-Key, apikey
    '(?:access|private|secret|account|signing|encryption|master|auth|license)[-_.]?key', // SharedAccessKey, AccountKey
    'key[-_.]?data', // kubeconfig client-key-data
    'credential', // --credentials, credential=
    'authori[sz]ation', // Authorization header, --authorization
    '(?:^|[-_.])auth$', // --auth, --basic-auth, HTTP_AUTH
    'cookie', // Cookie header, --cookie
    'signature', // X-Amz-Signature in presigned URLs
    '(?:^|[-_.])sig$', // SAS tokens: sig=
  ],
  safeNames: [
    // A name ending in one of these words names where the secret is, or something about it, not the secret.
    '[-_.](?:file|files|path|dir|stdin|fd|fds|prompt|env|cmd|command|helper|length|len|policy|type|mode|id|ids' +
      '|name|names|arn|ref|jar|url|uri|endpoint|host|port|user|username|expiry|expires|ttl|timeout)$',
    // Boolean switches: --no-password, --ask-pass, --with-token, --prompt-password.
    '^(?:no|ask|prompt|with|without|skip|disable|enable|require|show|hide)[-_.]',
    'askpass', // SSH_ASKPASS, --askpass
    '^(?:old)?pwd$', // the working directory
    'tokeni[sz]', // --tokenizer
    '(?:max|min|num)[-_.]?(?:new[-_.]?)?tokens?$', // --max-tokens
    'pass[-_.]?(?:through|thru)', // --pass-through
    '(?:by|com|sur|tres)pass$', // --bypass, compass
  ],
  valueFlags: [
    { flags: ['-p'], programs: MYSQL_LIKE, attached: true, next: false },
    { flags: ['-p'], programs: ['7z', '7za', '7zr', '7zz', 'rar', 'unrar'], attached: true, next: false },
    { flags: ['-p'], programs: ['sshpass'] },
    {
      flags: ['-p'],
      programs: ['docker login', 'podman login', 'nerdctl login', 'buildah login', 'skopeo login', 'helm login', 'oras login', 'az login'],
    },
    { flags: ['-p'], programs: MONGO, attached: false },
    { flags: ['-a'], programs: ['redis-cli', 'valkey-cli', 'keydb-cli'], attached: false },
    { flags: ['-u', '--user', '-U', '--proxy-user'], programs: ['curl'], keepBefore: ':' },
    { flags: ['-a', '--auth'], programs: ['http', 'https', 'xh', 'xhs'], keepBefore: ':' },
    { flags: ['-U', '--user'], programs: ['smbclient', 'rpcclient', 'smbcacls', 'smbget'], keepBefore: '%' },
    { flags: ['-passin', '-passout', '-pass'], programs: ['openssl'], attached: false, keepBefore: ':' },
    { flags: ['-k', '-K'], programs: ['openssl'], attached: false },
    { flags: ['-P'], programs: ['sqlcmd', 'bcp', 'osql'] },
    { flags: ['-w'], programs: LDAP },
    { flags: ['-s', '-a'], programs: ['ldappasswd'] },
    { flags: ['-P'], programs: ['zip', 'unzip', 'zipcloak'] },
    { flags: ['-p'], programs: ['useradd', 'usermod'] },
    { flags: ['-P'], programs: ['ipmitool', 'mosquitto_pub', 'mosquitto_sub', 'mosquitto_rr'] },
    { flags: ['-c', '-A', '-X'], programs: SNMP },
    { flags: ['-p'], programs: ['rdesktop'] },
    { flags: ['/p:'], programs: ['xfreerdp', 'xfreerdp3', 'wlfreerdp', 'sdl-freerdp', 'sdl-freerdp3'] },
    { flags: ['--from-literal'], programs: ['kubectl secret', 'oc secret'], keepBefore: '=' },
    { flags: ['-b', '--body'], programs: ['gh secret'] },
  ],
  positionalPairs: [
    'aws configure', 'git config', 'npm config', 'yarn config', 'pnpm config', 'pip config', 'pip3 config',
    'poetry config', 'bundle config', 'composer config', 'conda config', 'gcloud config',
  ],
  shells: [
    'sh', 'bash', 'dash', 'zsh', 'ksh', 'ksh93', 'mksh', 'ash', 'yash', 'busybox', 'fish', 'tcsh', 'csh',
    'su', 'runuser', 'script', 'flock',
  ],
  tokenPatterns: [
    'eyJ[A-Za-z0-9_-]{5,}(?:\\.[A-Za-z0-9_-]*){2,4}', // JWT / JWS / JWE: base64url of '{"' then 3-5 segments
    'gh[pousr]_[A-Za-z0-9]{30,}', // GitHub tokens
    'github_pat_[A-Za-z0-9_]{40,}',
    'gl(?:pat|dt|rt|ptt|cbt|soat|ft|imt)-[A-Za-z0-9_-]{20,}', // GitLab tokens
    'xox[abposer]-[A-Za-z0-9-]{10,}', // Slack tokens
    'xapp-[0-9]-[A-Za-z0-9-]{10,}',
    '(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}', // AWS access key ids
    '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}', // Stripe keys
    'whsec_[A-Za-z0-9]{20,}',
    'sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}', // LLM API keys
    'AIza[0-9A-Za-z_-]{35}', // Google API key
    'ya29\\.[0-9A-Za-z_-]{20,}', // Google OAuth access token
    'hv[sbr]\\.[A-Za-z0-9_-]{20,}', // Vault tokens
    'npm_[A-Za-z0-9]{36}',
    'pypi-[A-Za-z0-9_-]{50,}',
    'dop_v1_[a-f0-9]{64}', // DigitalOcean
    'SG\\.[A-Za-z0-9_-]{16,}\\.[A-Za-z0-9_-]{16,}', // SendGrid
    'shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}', // Shopify
    'hf_[A-Za-z0-9]{30,}', // Hugging Face
    'dckr_pat_[A-Za-z0-9_-]{20,}', // Docker Hub
    '-----BEGIN[A-Z ]{0,40}PRIVATE KEY-----[\\s\\S]*?(?:-----END[A-Z ]{0,40}PRIVATE KEY-----|$)', // PEM keys
  ],
  envAllow: [
    'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_*', 'TERM', 'COLORTERM', 'PWD', 'OLDPWD',
    'HOSTNAME', 'TZ', 'SHLVL', 'TMPDIR', 'DISPLAY', 'WAYLAND_DISPLAY', 'XDG_RUNTIME_DIR', 'XDG_SESSION_TYPE',
    'XDG_SESSION_ID', 'MAIL', 'EDITOR', 'VISUAL', 'PAGER', 'SUDO_USER', 'SUDO_UID', 'SUDO_GID', 'SSH_CLIENT',
    'SSH_CONNECTION', 'SSH_TTY', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'HISTFILE', 'HISTSIZE',
    'HISTFILESIZE', 'container',
  ],
  mask: '****',
});

// Commands that run another command given as arguments. They bound a program's context, so sshpass's `-p`
// rule does not reach `ssh -p 22` later in the same argv, and they mark a quoted string as a command line.
const COMMAND_WORDS = [
  'ssh', 'scp', 'sftp', 'rsync', 'sudo', 'doas', 'env', 'nohup', 'timeout', 'nice', 'ionice', 'chroot', 'exec',
  'xargs', 'time', 'strace', 'ltrace', 'watch', 'setsid', 'stdbuf', 'taskset', 'chrt', 'unshare', 'nsenter',
  'docker', 'podman', 'kubectl', 'nerdctl', 'crictl', 'ctr',
];

// A nested `sh -c "bash -c '…'"` is scrubbed this many levels deep; deeper strings get the free-text rules only.
const MAX_SHELL_DEPTH = 3;

// Self-identifying tokens are long; shorter text skips the token scan (the scan is the costliest regex).
const MIN_TOKEN_LEN = 16;

// A flag: one or two dashes, a name, optionally "=value". Names start with a letter or digit so that "--" and
// "-" stay plain words.
const FLAG_RE = /^--?([A-Za-z0-9][A-Za-z0-9_.-]*)(?:=([\s\S]*))?$/;
// A positional NAME=VALUE (env assignment, `docker run -e` pair, terraform -var, vault kv put …).
const ASSIGN_RE = /^([A-Za-z_][A-Za-z0-9_.-]*)=/;
// A shell option cluster that contains -c: -c, -lc, -ec, -xec.
const SHELL_C_RE = /^-[A-Za-z]{0,6}c[A-Za-z]{0,6}$/;
const BEARER_RE = /\b(bearer)([ \t]+)([^\s"'&;,]+)/gi;
// Where a value stops in free text: whitespace, quotes and shell/query separators.
const VALUE_STOP = /[\s"'&;,|<>`]/;
const HEADER_STOP = /[\r\n"']/;
// Scheme of an Authorization value ("Bearer", "Basic", "token"), kept so the report shows the kind of auth.
const AUTH_SCHEME_RE = /^[A-Za-z][A-Za-z0-9_-]*[ \t]+(?=\S)/;

function basename(a: string): string {
  const s = a.lastIndexOf('/');
  return s < 0 ? a : a.slice(s + 1);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** RFC 3986 scheme characters: letters, digits, + - . */
function isSchemeChar(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
}

/** Characters of the user part of URL userinfo (up to the ':'). */
function isUserChar(c: number): boolean {
  // not whitespace / ? # @ : " '
  return !isSpace(c) && c !== 47 && c !== 63 && c !== 35 && c !== 64 && c !== 58 && c !== 34 && c !== 39;
}

/** Characters after which `name:value` (no spaces) starts a new token. */
function isTokenStart(c: number): boolean {
  // space, tab, newline, quotes, { , ; ( [ = & ?
  return isSpace(c) || c === 34 || c === 39 || c === 123 || c === 44 || c === 59 || c === 40 || c === 91 || c === 61 || c === 38 || c === 63;
}

interface CompiledFlagRule {
  plain: Set<string> | undefined; // undefined together with subs: any program
  subs: Map<string, Set<string>>;
  attached: boolean;
  next: boolean;
  keepBefore: string | undefined;
}

/** One argv (or one command of a command string) being scrubbed, with its program positions found lazily. */
class Words {
  readonly words: string[];
  private readonly known: Set<string>;
  private pos: number[] | undefined;
  private names: string[] = [];
  private subMemo: Map<Set<string>, Map<number, number>> | undefined;

  constructor(words: string[], known: Set<string>) {
    this.words = words;
    this.known = known;
  }

  /** The last known program word before `i` as [index, basename], or undefined. The positions are found once
   *  per argv and only when a rule asks; the search is binary so a long argv of flags stays linear. */
  programBefore(i: number): [number, string] | undefined {
    if (this.pos === undefined) {
      this.pos = [];
      const w = this.words;
      for (let k = 0; k < w.length; k++) {
        let a = w[k]!;
        if (a.charCodeAt(0) === 45) {
          if (k !== 0) continue;
          a = a.slice(1); // a login shell's argv[0] is "-bash"
        }
        const b = basename(a);
        if (this.known.has(b)) {
          this.pos.push(k);
          this.names.push(b);
        }
      }
    }
    const pos = this.pos;
    let lo = 0;
    let hi = pos.length; // first position >= i
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pos[mid]! < i) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : [pos[lo - 1]!, this.names[lo - 1]!];
  }

  /** Whether a word of `subs` appears strictly between `from` and `to` (memoized per program position). */
  hasBetween(subs: Set<string>, from: number, to: number): boolean {
    this.subMemo ??= new Map();
    let m = this.subMemo.get(subs);
    if (!m) this.subMemo.set(subs, (m = new Map()));
    let first = m.get(from);
    if (first === undefined) {
      first = this.words.length;
      for (let k = from + 1; k < this.words.length; k++) {
        if (subs.has(this.words[k]!)) {
          first = k;
          break;
        }
      }
      m.set(from, first);
    }
    return first < to;
  }
}

/** A program list with optional subcommands ("docker login"), compiled for `programMatches`. */
interface ProgramSet {
  plain: Set<string> | undefined;
  subs: Map<string, Set<string>>;
}

interface ShellWord {
  start: number;
  end: number;
  value: string;
}

/** Bounds of Scrubber's memo of clean command lines: entries, and characters per command line. */
const ARGV_MEMO_ENTRIES = 4096;
const ARGV_MEMO_MAX_CHARS = 1024;

/**
 * Scrubs argv, env and free text. Construct once (the config is compiled here) and reuse: the methods never
 * throw, and the only state they keep is scrubArgv's memo of command lines with nothing to mask.
 */
export class Scrubber {
  private readonly mask: string;
  private readonly secretRe: RegExp;
  private readonly safeRe: RegExp | undefined;
  private readonly tokenRe: RegExp | undefined;
  // A name is word characters joined by single '.' or '-' ("X-Api-Key", "db.password"), and it may only start
  // where no longer name could (the lookbehind). So every position is tried O(1) times and a hostile run such
  // as "aaaa…" or "a-a-a-…" is scanned once, not once per position (which was quadratic).
  private readonly nameSepRe = /(?<![A-Za-z0-9_]|[A-Za-z0-9_][.-])(["']?)([A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z0-9_]+)*)\1([ \t]*)([:=])([ \t]*)/g;
  private readonly exact = new Map<string, CompiledFlagRule[]>();
  private readonly short = new Map<string, CompiledFlagRule[]>();
  private readonly long = new Map<string, CompiledFlagRule[]>();
  private readonly glued: { prefix: string; rule: CompiledFlagRule }[] = [];
  private readonly pairs: ProgramSet;
  private readonly shells: Set<string>;
  private readonly known = new Set<string>(COMMAND_WORDS);
  private readonly envAllow = new Set<string>();
  private readonly envAllowPrefixes: string[] = [];

  /** @throws InvalidArgumentError naming the field for an unknown field, a bad regex fragment, a fragment that
   *  matches the empty string (it would match every name), or a malformed rule. */
  constructor(cfg: Partial<ScrubConfig> = {}) {
    for (const k of Object.keys(cfg)) {
      if (!Object.hasOwn(DEFAULT_SCRUB_CONFIG, k)) throw new InvalidArgumentError(`scrub config: unknown field "${k}"`);
    }
    const c: ScrubConfig = { ...DEFAULT_SCRUB_CONFIG };
    for (const [k, v] of Object.entries(cfg)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;

    if (typeof c.mask !== 'string' || c.mask === '') throw new InvalidArgumentError('scrub config: mask must be a non-empty string');
    this.mask = c.mask;
    stringList('secretNames', c.secretNames);
    if (c.secretNames.length === 0) throw new InvalidArgumentError('scrub config: secretNames must not be empty');
    this.secretRe = compileFragments('secretNames', c.secretNames, 'i')!;
    this.safeRe = compileFragments('safeNames', c.safeNames, 'i');
    const tokens = compileFragments('tokenPatterns', c.tokenPatterns, '');
    // Token boundaries: not inside a longer word ("task-…" is not an "sk-" key). A token is masked to its end,
    // so that fixed-length patterns leave no tail visible.
    this.tokenRe = tokens && new RegExp(`(?<![A-Za-z0-9_-])(?:${tokens.source})[A-Za-z0-9_-]*`, 'g');

    stringList('valueFlags', c.valueFlags as unknown[], false);
    c.valueFlags.forEach((r, i) => this.addFlagRule(r, `valueFlags[${i}]`));
    this.pairs = this.programSet('positionalPairs', c.positionalPairs);
    stringList('shells', c.shells);
    this.shells = new Set(c.shells);
    for (const s of c.shells) this.known.add(s);

    stringList('envAllow', c.envAllow);
    c.envAllow.forEach((n, i) => {
      const star = n.indexOf('*');
      if (n.includes('=') || (star >= 0 && star !== n.length - 1)) {
        throw new InvalidArgumentError(`scrub config: envAllow[${i}] "${n}": a name, optionally ending in "*"`);
      }
      if (star >= 0) this.envAllowPrefixes.push(n.slice(0, -1));
      else this.envAllow.add(n);
    });
  }

  private programSet(field: string, list: string[] | undefined): ProgramSet {
    const set: ProgramSet = { plain: undefined, subs: new Map() };
    if (list === undefined) return set;
    stringList(field, list);
    set.plain = new Set();
    list.forEach((p, i) => {
      const parts = p.trim().split(/\s+/);
      if (parts.length > 2 || parts[0] === '') {
        throw new InvalidArgumentError(`scrub config: ${field}[${i}] "${p}": a program basename, optionally followed by one subcommand word`);
      }
      this.known.add(parts[0]!);
      if (parts.length === 1) set.plain!.add(parts[0]!);
      else {
        let s = set.subs.get(parts[0]!);
        if (!s) set.subs.set(parts[0]!, (s = new Set()));
        s.add(parts[1]!);
      }
    });
    return set;
  }

  private addFlagRule(r: ValueFlagRule, field: string): void {
    if (!r || typeof r !== 'object') throw new InvalidArgumentError(`scrub config: ${field} must be an object`);
    for (const k of Object.keys(r)) {
      if (!['flags', 'programs', 'attached', 'next', 'keepBefore'].includes(k)) {
        throw new InvalidArgumentError(`scrub config: ${field}: unknown field "${k}"`);
      }
    }
    stringList(`${field}.flags`, r.flags);
    if (r.flags.length === 0) throw new InvalidArgumentError(`scrub config: ${field}.flags must not be empty`);
    for (const b of ['attached', 'next'] as const) {
      if (r[b] !== undefined && typeof r[b] !== 'boolean') throw new InvalidArgumentError(`scrub config: ${field}.${b} must be a boolean`);
    }
    if (r.keepBefore !== undefined && (typeof r.keepBefore !== 'string' || r.keepBefore === '')) {
      throw new InvalidArgumentError(`scrub config: ${field}.keepBefore must be a non-empty string`);
    }
    const ps = this.programSet(`${field}.programs`, r.programs);
    const rule: CompiledFlagRule = {
      plain: ps.plain,
      subs: ps.subs,
      attached: r.attached ?? true,
      next: r.next ?? true,
      keepBefore: r.keepBefore,
    };
    if (!rule.attached && !rule.next) throw new InvalidArgumentError(`scrub config: ${field}: attached and next are both false`);
    const add = (m: Map<string, CompiledFlagRule[]>, k: string) => {
      const l = m.get(k);
      if (l) l.push(rule);
      else m.set(k, [rule]);
    };
    for (const f of r.flags) {
      if (/\s/.test(f)) throw new InvalidArgumentError(`scrub config: ${field}.flags: "${f}" contains whitespace`);
      const last = f[f.length - 1];
      if (last === ':' || last === '=') {
        // "/p:" style: the value is always glued on.
        this.glued.push({ prefix: f, rule: { ...rule, attached: true, next: false } });
        continue;
      }
      // Always indexed exactly: a bare flag with next=false still belongs to the rule (mysql's bare -p prompts,
      // and the word after it is the database, not a secret).
      add(this.exact, f);
      if (rule.attached) {
        if (f.length === 2 && f[0] === '-') add(this.short, f);
        else add(this.long, f);
      }
    }
  }

  /** Whether `name` (a flag name without dashes, an assignment, header or JSON key) names a secret. */
  isSecretName(name: string): boolean {
    return this.secretRe.test(name) && !(this.safeRe !== undefined && this.safeRe.test(name));
  }

  /**
   * Scrubs one argv. Program-specific rules apply to the program in effect at each argument: the basename of
   * argv[0] or of the last later word naming a known program, so `sudo mysql -pX` and `docker exec db mysql -pX`
   * are covered. Returns the input array itself when nothing was scrubbed (no copy on the common path), or a
   * frozen array equal to it when the same command line was seen clean before; else a copy. The input is never
   * modified. `scrubbed` counts the arguments that changed.
   */
  scrubArgv(argv: string[]): { argv: string[]; scrubbed: number } {
    // The same command lines run again and again (probes, cron, scripts' helpers), and scrubbing one costs
    // microseconds (bench/pipeline): an argv these rules leave alone is remembered, and its next run costs a
    // serialisation and a lookup. Only those: the memo never holds a secret these rules would mask.
    let key: string | undefined;
    let bytes = 0;
    for (const a of argv) bytes += a.length;
    if (bytes <= ARGV_MEMO_MAX_CHARS) {
      key = JSON.stringify(argv);
      const hit = this.argvMemo.get(key);
      if (hit) return { argv: hit, scrubbed: 0 };
    }
    const r = this.scrubWords(argv, 0);
    if (key !== undefined && r.n === 0) {
      if (this.argvMemo.size >= ARGV_MEMO_ENTRIES) this.argvMemo.clear();
      this.argvMemo.set(key, Object.freeze(r.out.slice()) as string[]); // a copy: the caller's array stays the caller's
    }
    return { argv: r.out, scrubbed: r.n };
  }
  /** Command lines that scrubbed to themselves, by their JSON (see scrubArgv); the arrays are shared, never written. */
  private readonly argvMemo = new Map<string, string[]>();

  /**
   * Splits NAME=VALUE strings. Values are kept only for envAllow names, and even then a secret-looking name
   * masks the value and scrubText runs on it. `scrubbed` counts the values not reported as given (withheld or
   * masked). A string without '=' is reported as a name.
   */
  scrubEnv(envRaw: string[]): { env: EnvVar[]; scrubbed: number } {
    const env: EnvVar[] = new Array(envRaw.length);
    let n = 0;
    for (let i = 0; i < envRaw.length; i++) {
      const e = envRaw[i]!;
      const eq = e.indexOf('=');
      if (eq < 0) {
        env[i] = { name: e };
        continue;
      }
      const name = e.slice(0, eq);
      if (!this.envAllowed(name)) {
        env[i] = { name };
        n++;
        continue;
      }
      const value = e.slice(eq + 1);
      const v = value !== '' && this.isSecretName(name) ? this.mask : this.text(value);
      if (v !== value) n++;
      env[i] = { name, value: v };
    }
    return { env, scrubbed: n };
  }

  /** Scrubs free text: URL credentials, Authorization values and bearer tokens, NAME=value / NAME: value /
   *  "NAME": "value" with secret names, and tokenPatterns. */
  scrubText(s: string): string {
    return this.text(s);
  }

  /** Whether scrubEnv reports the value of variable `name` (scrubbed); every other one is reported by name alone. */
  envAllowed(name: string): boolean {
    if (this.envAllow.has(name)) return true;
    for (const p of this.envAllowPrefixes) if (name.startsWith(p)) return true;
    return false;
  }

  // --- argv ---

  private scrubWords(words: string[], depth: number): { out: string[]; n: number } {
    const view = new Words(words, this.known);
    let out: string[] | undefined;
    let n = 0;
    const set = (i: number, v: string) => {
      if (v === words[i]) return;
      out ??= words.slice();
      out[i] = v;
      n++;
    };
    let pendingMask = false;
    let pendingKeep: string | undefined;
    let pendingCmd = false;
    const len = words.length;
    for (let i = 0; i < len; i++) {
      const a = words[i]!;
      if (i === 0) {
        // Programs that rewrite their title (setproctitle) put their whole status, URLs included, in argv[0].
        set(0, this.text(a));
        continue;
      }
      if (pendingMask) {
        pendingMask = false;
        set(i, this.maskValue(a, pendingKeep));
        continue;
      }
      const c0 = a.charCodeAt(0);
      if (pendingCmd && c0 !== 45 && c0 !== 43) {
        pendingCmd = false;
        set(i, this.scrubCommand(a, depth + 1));
        continue;
      }
      if ((c0 === 45 || c0 === 47) && a.length > 1) {
        const hit = this.flagHit(view, i);
        if (hit) {
          if (hit.valueAt >= 0) set(i, a.slice(0, hit.valueAt) + this.maskValue(a.slice(hit.valueAt), hit.rule.keepBefore));
          else if (hit.rule.next && i + 1 < len) {
            pendingMask = true;
            pendingKeep = hit.rule.keepBefore;
          }
          continue;
        }
      }
      if (c0 === 45 && a.length > 1) {
        const attachedCmd = a.startsWith('--command=');
        if ((attachedCmd || a === '--command' || SHELL_C_RE.test(a)) && this.inShell(view, i)) {
          if (attachedCmd) set(i, `--command=${this.scrubCommand(a.slice(10), depth + 1)}`);
          else pendingCmd = true;
          continue;
        }
        const m = FLAG_RE.exec(a);
        if (m) {
          const value = m[2];
          if (this.isSecretName(m[1]!)) {
            if (value !== undefined) set(i, a.slice(0, a.length - value.length) + this.maskValue(value, undefined));
            // A secret-named flag without a value takes the next word, unless that word is another flag: then
            // this one is a switch (psql --password prompts).
            else if (i + 1 < len && words[i + 1]!.charCodeAt(0) !== 45) pendingMask = true;
            pendingKeep = undefined;
            continue;
          }
          if (value !== undefined) {
            set(i, a.slice(0, a.length - value.length) + this.text(value));
            continue;
          }
        }
        set(i, this.text(a));
        continue;
      }
      // A positional.
      if (this.looksLikeCommand(a)) {
        set(i, this.scrubCommand(a, depth + 1));
        continue;
      }
      const am = ASSIGN_RE.exec(a);
      if (am) {
        const name = am[1]!;
        const value = a.slice(name.length + 1);
        set(i, `${name}=${this.isSecretName(name) ? this.maskValue(value, undefined) : this.text(value)}`);
        continue;
      }
      if (this.pairs.plain !== undefined && this.isSecretName(a) && this.programMatches(this.pairs, view, i)) {
        pendingMask = i + 1 < len;
        pendingKeep = undefined;
        // The name itself may carry a value too (npm's "//host/:_authToken=…").
      }
      set(i, this.text(a));
    }
    return { out: out ?? words, n };
  }

  /** The value-flag rule that applies to words[i], and where its value starts (-1: in the next word). */
  private flagHit(view: Words, i: number): { rule: CompiledFlagRule; valueAt: number } | undefined {
    const a = view.words[i]!;
    let rules = this.exact.get(a);
    if (rules) for (const r of rules) if (this.ruleApplies(r, view, i)) return { rule: r, valueAt: -1 };
    const eq = a.indexOf('=');
    if (eq > 0) {
      rules = this.long.get(a.slice(0, eq));
      if (rules) for (const r of rules) if (this.ruleApplies(r, view, i)) return { rule: r, valueAt: eq + 1 };
    }
    for (const g of this.glued) {
      if (a.length > g.prefix.length && a.startsWith(g.prefix) && this.ruleApplies(g.rule, view, i)) {
        return { rule: g.rule, valueAt: g.prefix.length };
      }
    }
    if (a.length > 2 && a.charCodeAt(1) !== 45) {
      rules = this.short.get(a.slice(0, 2));
      if (rules) for (const r of rules) if (this.ruleApplies(r, view, i)) return { rule: r, valueAt: 2 };
    }
    return undefined;
  }

  private ruleApplies(r: CompiledFlagRule, view: Words, i: number): boolean {
    if (r.plain === undefined) return true;
    return this.programMatches(r, view, i);
  }

  /** Whether the program in effect at words[i] (the last known program word before it) is in `set`. */
  private programMatches(set: ProgramSet, view: Words, i: number): boolean {
    const p = view.programBefore(i);
    if (p === undefined) return false;
    if (set.plain!.has(p[1])) return true;
    const subs = set.subs.get(p[1]);
    return subs !== undefined && view.hasBetween(subs, p[0], i);
  }

  private inShell(view: Words, i: number): boolean {
    const p = view.programBefore(i);
    return p !== undefined && this.shells.has(p[1]);
  }

  /** A positional holding a whole command line: `ssh host "mysql -pX"`, `watch "redis-cli -a X info"`. */
  private looksLikeCommand(a: string): boolean {
    let k = 0;
    while (k < a.length && isSpace(a.charCodeAt(k))) k++;
    let e = k;
    while (e < a.length && !isSpace(a.charCodeAt(e))) e++;
    if (e >= a.length) return false; // a single word
    return this.known.has(basename(a.slice(k, e)));
  }

  private maskValue(v: string, keepBefore: string | undefined): string {
    if (v === '') return v;
    if (keepBefore === undefined) return this.mask;
    const k = v.indexOf(keepBefore);
    if (k < 0) return this.text(v);
    const head = v.slice(0, k + keepBefore.length);
    return k + keepBefore.length === v.length ? this.text(v) : this.text(head) + this.mask;
  }

  // --- command strings ---

  /** Scrubs a shell command string word by word and writes back only the words that changed. */
  private scrubCommand(s: string, depth: number): string {
    if (depth > MAX_SHELL_DEPTH) return this.text(s);
    let out = '';
    let last = 0;
    for (const cmd of splitShell(s)) {
      // A leading '' stands for argv[0]: every real word, the program included, is scrubbed as an argument
      // (so leading assignments like PGPASSWORD=x are masked).
      const words = [''];
      for (const w of cmd) words.push(w.value);
      const r = this.scrubWords(words, depth);
      if (r.n === 0) continue;
      for (let k = 0; k < cmd.length; k++) {
        const v = r.out[k + 1]!;
        if (v === words[k + 1]) continue;
        const w = cmd[k]!;
        out += s.slice(last, w.start) + requote(s.slice(w.start, w.end), v);
        last = w.end;
      }
    }
    // Free-text rules over the whole string catch what the word pass missed (unparsed substitutions, heredocs).
    return this.text(last === 0 ? s : out + s.slice(last));
  }

  // --- free text ---

  private text(s: string): string {
    let out = s;
    const colon = s.indexOf(':') >= 0;
    if (colon && s.indexOf('://') >= 0) out = this.urls(out);
    if (colon || out.indexOf('=') >= 0) out = this.names(out);
    if (out.length >= 8 && /bearer/i.test(out)) out = out.replace(BEARER_RE, (_m, b: string, sp: string) => `${b}${sp}${this.mask}`);
    if (this.tokenRe !== undefined && out.length >= MIN_TOKEN_LEN) out = out.replace(this.tokenRe, this.mask);
    return out;
  }

  /**
   * scheme://user:password@ — the password is masked. It runs to the last '@' before whitespace, '?', '#' or a
   * quote, so raw '@' and '/' inside it (unencoded, as people do type them) are masked too. A hand-written scan
   * rather than a regex: with '/' allowed in the password a regex rescans to the end of the segment for every
   * "://" in it, which is quadratic on hostile input; here each segment's last '@' is found once.
   */
  private urls(s: string): string {
    let out = '';
    let last = 0;
    let segEnd = -1; // the segment [.., segEnd) whose last '@' is segAt
    let segAt = -1;
    let from = 0;
    for (;;) {
      const p = s.indexOf('://', from);
      if (p < 0) break;
      from = p + 3;
      if (p < last) continue;
      let b = p;
      while (b > last && isSchemeChar(s.charCodeAt(b - 1))) b--;
      while (b < p && !isAlpha(s.charCodeAt(b))) b++; // a scheme starts with a letter
      if (b === p) continue;
      let u = p + 3;
      while (u < s.length && isUserChar(s.charCodeAt(u))) u++;
      if (s.charCodeAt(u) !== 58) continue; // no "user:": nothing secret in the authority
      const q = u + 1;
      if (q >= segEnd) {
        segAt = -1;
        let e = q;
        for (; e < s.length; e++) {
          const c = s.charCodeAt(e);
          if (isSpace(c) || c === 63 || c === 35 || c === 34 || c === 39) break; // ? # " '
          if (c === 64) segAt = e;
        }
        segEnd = e;
      }
      if (segAt <= q) continue; // no '@' after the colon, or an empty password
      out += s.slice(last, q) + this.mask;
      last = segAt;
      from = segAt + 1;
    }
    return last === 0 ? s : out + s.slice(last);
  }

  /** NAME=value, NAME: value, "NAME": "value" where NAME is secret: the value is masked. */
  private names(s: string): string {
    const re = this.nameSepRe;
    re.lastIndex = 0;
    let out = '';
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      const quote = m[1]!;
      const name = m[2]!;
      const sep = m[4]!;
      const tight = m[3] === '' && m[5] === '';
      let vs = m.index + m[0].length;
      if (sep === ':') {
        // "scheme://": a URL, handled by its own rule.
        if (s.charCodeAt(vs) === 47 && s.charCodeAt(vs + 1) === 47) continue;
        // name:value with no spaces is only a key when it starts a token ("arn:aws:secretsmanager:…" is not).
        if (tight && quote === '' && m.index > 0 && !isTokenStart(s.charCodeAt(m.index - 1))) continue;
      }
      if (!this.isSecretName(name)) continue;
      let ve: number;
      const q = s[vs];
      if (q === '"' || q === "'") {
        vs++;
        ve = vs;
        while (ve < s.length && s[ve] !== q) ve += s[ve] === '\\' && q === '"' ? 2 : 1;
        if (ve > s.length) ve = s.length;
      } else {
        // A header ("Authorization: Bearer x y") runs to the end of the line; other values to a separator.
        const stop = sep === ':' && !tight ? HEADER_STOP : VALUE_STOP;
        ve = vs;
        while (ve < s.length && !stop.test(s[ve]!)) ve++;
        while (ve > vs && isSpace(s.charCodeAt(ve - 1))) ve--;
      }
      if (/authori[sz]ation$/i.test(name)) {
        const sm = AUTH_SCHEME_RE.exec(s.slice(vs, ve));
        if (sm) vs += sm[0].length;
      }
      if (ve <= vs) continue;
      out += s.slice(last, vs) + this.mask;
      last = ve;
      re.lastIndex = ve;
    }
    return last === 0 ? s : out + s.slice(last);
  }
}

/** Compiles fragments one by one (to name the bad one), then as one alternation; undefined for an empty list. */
function compileFragments(field: string, list: string[], flags: string): RegExp | undefined {
  stringList(field, list);
  list.forEach((f, i) => {
    let re: RegExp;
    try {
      re = new RegExp(f, flags);
    } catch (e) {
      throw new InvalidArgumentError(`scrub config: ${field}[${i}] "${f}" is not a valid regular expression: ${(e as Error).message}`, { cause: e });
    }
    if (re.test('')) throw new InvalidArgumentError(`scrub config: ${field}[${i}] "${f}" matches the empty string`);
  });
  if (list.length === 0) return undefined;
  return new RegExp(list.map((f) => `(?:${f})`).join('|'), flags);
}

function stringList(field: string, list: unknown, strings = true): void {
  if (!Array.isArray(list)) throw new InvalidArgumentError(`scrub config: ${field} must be an array`);
  if (!strings) return;
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s === '') throw new InvalidArgumentError(`scrub config: ${field}[${i}] must be a non-empty string`);
  });
}

/** Writes a scrubbed word back in the quoting its original used, so the rest of the string reads the same. */
function requote(raw: string, value: string): string {
  const q = raw[0];
  if (raw.length >= 2 && (q === '"' || q === "'") && raw[raw.length - 1] === q) {
    if (q === "'" && !value.includes("'")) return `'${value}'`;
    if (q === '"' && !/["\\$`]/.test(value)) return `"${value}"`;
  }
  if (value !== '' && !/[\s"'\\$`;&|<>()#]/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Splits a POSIX-ish shell command string into commands (at ; & | newline parentheses and backquotes) of
 * words with their spans, undoing quotes and backslashes. It is a tokenizer, not a parser: substitutions and
 * here-documents are not expanded (the free-text pass covers them). "\xNN" stays as is: it is how a non-UTF-8
 * byte reached us (src/events/strings.ts), not a shell escape.
 */
function splitShell(s: string): ShellWord[][] {
  const cmds: ShellWord[][] = [];
  let cur: ShellWord[] = [];
  let value = '';
  let start = -1;
  const endWord = (end: number) => {
    if (start >= 0) cur.push({ start, end, value });
    start = -1;
    value = '';
  };
  const endCmd = () => {
    if (cur.length) cmds.push(cur);
    cur = [];
  };
  const len = s.length;
  let i = 0;
  while (i < len) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord(i);
      i++;
      continue;
    }
    if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')' || c === '`') {
      endWord(i);
      endCmd();
      i++;
      continue;
    }
    if (c === '<' || c === '>') {
      endWord(i);
      i++;
      if (s[i] === '&') i++; // 2>&1 is a redirection, not a background command
      continue;
    }
    if (c === '#' && start < 0) {
      while (i < len && s[i] !== '\n') i++;
      continue;
    }
    if (c === '$' && s[i + 1] === '(') {
      endWord(i);
      endCmd();
      i += 2;
      continue;
    }
    if (start < 0) start = i;
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      const e = j < 0 ? len : j;
      value += s.slice(i + 1, e);
      i = e + 1;
    } else if (c === '"') {
      i++;
      while (i < len && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < len && '"\\$`\n'.includes(s[i + 1]!)) {
          value += s[i + 1];
          i += 2;
        } else value += s[i++];
      }
      i++;
    } else if (c === '\\') {
      if (/^\\x[0-9a-fA-F]{2}/.test(s.slice(i, i + 4))) {
        value += s.slice(i, i + 4);
        i += 4;
      } else {
        if (i + 1 < len && s[i + 1] !== '\n') value += s[i + 1];
        i += 2;
      }
    } else if (c === '$' && s[i + 1] === "'") {
      // $'…' (ANSI-C quoting): escapes are kept as written.
      i += 2;
      while (i < len && s[i] !== "'") {
        if (s[i] === '\\' && i + 1 < len) {
          value += s.slice(i, i + 2);
          i += 2;
        } else value += s[i++];
      }
      i++;
    } else {
      value += c;
      i++;
    }
  }
  endWord(Math.min(i, len));
  endCmd();
  return cmds;
}
