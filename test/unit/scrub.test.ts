// Secret scrubbing of argv, env and free text: real-world command lines that carry secrets, lookalikes that
// must stay intact, shell command strings, hostile input, and config validation. No privileges needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SCRUB_CONFIG, Scrubber } from '../../src/process/scrub.ts';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';

const s = new Scrubber();
const M = DEFAULT_SCRUB_CONFIG.mask;
const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EiLCJleHAiOjE3MDB9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const GHP = 'ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';

/** [input argv, expected argv]: every case is checked exactly, and for idempotence. */
type Case = [string[], string[]];

function check(cases: Case[]): void {
  for (const [input, want] of cases) {
    const copy = [...input];
    const r = s.scrubArgv(input);
    assert.deepEqual(r.argv, want, `scrubArgv(${JSON.stringify(input)})`);
    assert.equal(r.scrubbed, want.filter((w, i) => w !== input[i]).length, `scrubbed count of ${JSON.stringify(input)}`);
    assert.deepEqual(input, copy, 'the input array is not modified');
    assert.deepEqual(s.scrubArgv(r.argv).argv, r.argv, `idempotent on ${JSON.stringify(want)}`);
  }
}

test('database clients: mysql -pX (attached only), --password, psql URLs, redis-cli -a, mongo', () => {
  check([
    [['mysql', '-h', 'db', '-uroot', '-pHunter2', 'shop'], ['mysql', '-h', 'db', '-uroot', `-p${M}`, 'shop']],
    // A bare -p prompts; the next word is the database, not a password.
    [['mysql', '-uroot', '-p', 'shop'], ['mysql', '-uroot', '-p', 'shop']],
    [['/usr/bin/mysqldump', '-ps3cr3t', '--all-databases'], ['/usr/bin/mysqldump', `-p${M}`, '--all-databases']],
    [['mariadb', '--password=Hunter2', 'shop'], ['mariadb', `--password=${M}`, 'shop']],
    [['mysqladmin', '--user=root', '--password', 'Hunter2', 'status'], ['mysqladmin', '--user=root', '--password', M, 'status']],
    [['psql', 'postgresql://app:s3cr3t@db.internal:5432/app?sslmode=require'], ['psql', `postgresql://app:${M}@db.internal:5432/app?sslmode=require`]],
    [['psql', 'host=db user=app password=s3cr3t dbname=app'], ['psql', `host=db user=app password=${M} dbname=app`]],
    // psql --password is a switch (prompt); a following flag is not its value.
    [['psql', '-U', 'app', '--password', '-h', 'db'], ['psql', '-U', 'app', '--password', '-h', 'db']],
    [['redis-cli', '-h', 'cache', '-a', 'r3dis', 'ping'], ['redis-cli', '-h', 'cache', '-a', M, 'ping']],
    [['redis-cli', '-u', 'redis://:r3dis@cache:6379/0'], ['redis-cli', '-u', `redis://:${M}@cache:6379/0`]],
    [['redis-cli', '--pass', 'r3dis'], ['redis-cli', '--pass', M]],
    [['mongosh', 'mongodb+srv://u:m0ng0@cluster0.example.net/db'], ['mongosh', `mongodb+srv://u:${M}@cluster0.example.net/db`]],
    [['mongodump', '--username', 'u', '-p', 'm0ng0', '--db', 'x'], ['mongodump', '--username', 'u', '-p', M, '--db', 'x']],
    [['sqlcmd', '-S', 'db', '-U', 'sa', '-P', 'Sql!Pass'], ['sqlcmd', '-S', 'db', '-U', 'sa', '-P', M]],
  ]);
});

test('lookalikes stay intact: mkdir -p, ssh -p 22, grep token, --password-file, /etc/passwd, switches', () => {
  const same = [
    ['mkdir', '-p', '/srv/app/data'],
    ['mkdir', '-pv', 'a/b'],
    ['ssh', '-p', '22', 'admin@db1'],
    ['scp', '-P', '2222', 'f', 'h:/tmp'],
    ['grep', 'token', 'file.txt'],
    ['grep', '-ri', 'password', '/etc'],
    ['grep', '-r', 'api_key', '.'],
    ['ls', '--password-file'],
    ['mysql', '--password-file', '/run/secrets/db'],
    ['cat', '/etc/passwd'],
    ['getent', 'passwd', 'root'],
    ['cut', '-d:', '-f1', '/etc/passwd'],
    ['docker', 'run', '-p', '8080:80', '-e', 'DB_PASSWORD', '--env-file', '.env', 'nginx'],
    ['docker', 'login', '--password-stdin', '-u', 'me', 'registry.example'],
    ['ansible-playbook', '--ask-pass', '--ask-become-pass', 'site.yml'],
    ['gh', 'auth', 'login', '--with-token'],
    ['redis-cli', '--askpass', 'ping'],
    ['gcc', '-pthread', '-O2', '-c', 'x.c'],
    ['tar', '-czpf', 'x.tgz', '.'],
    ['kubectl', 'get', 'secret', 'db-creds', '-o', 'yaml'],
    ['kubectl', 'create', 'secret', 'generic', 's', '--from-file=key=./key.pem'],
    ['journalctl', '-u', 'token-refresher.service'],
    ['aws', 'secretsmanager', 'get-secret-value', '--secret-id', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCd'],
    ['git', 'config', '--global', 'credential.helper', 'store'],
    ['gh', 'pr', 'create', '--body', 'adds token rotation'],
    ['llm', '--max-tokens', '512', '--tokenizer', 'bert-base'],
    ['ping', '-c', '3', 'www.example.com'],
    ['pip', 'install', 'requests==2.31.0', 'numpy>=1.26'],
    ['curl', '-u', 'alice', 'https://example.com/'],
    ['echo', 'a.b.c', '1.2.3', 'host.example.com', 'a:b', 'key=value'],
    ['rsync', '-e', 'ssh -p 2222', 'src/', 'h:dst/'],
    ['-bash'],
    [],
  ];
  for (const argv of same) {
    const r = s.scrubArgv(argv);
    assert.deepEqual(r.argv, argv, JSON.stringify(argv));
    assert.equal(r.scrubbed, 0, JSON.stringify(argv));
    // Nothing to hide: the same array comes back (no copy on the common path).
    assert.equal(r.argv, argv);
  }
});

test('HTTP clients: Authorization headers, bearer tokens, curl -u user:password, query strings, JSON bodies', () => {
  check([
    [['curl', '-H', 'Authorization: Bearer abc.def-ghi', 'https://api.example/v1'], ['curl', '-H', `Authorization: Bearer ${M}`, 'https://api.example/v1']],
    [['curl', '-HAuthorization: token gho_xyz', 'x'], ['curl', `-HAuthorization: token ${M}`, 'x']],
    [['curl', '--header=X-Api-Key: k-123', 'x'], ['curl', `--header=X-Api-Key: ${M}`, 'x']],
    [['curl', '-H', 'Cookie: session=abc; theme=dark', 'x'], ['curl', '-H', `Cookie: ${M}`, 'x']],
    [['curl', '-u', 'bob:pw', 'x'], ['curl', '-u', `bob:${M}`, 'x']],
    [['curl', '-ubob:pw', 'x'], ['curl', `-ubob:${M}`, 'x']],
    [['curl', '--user=bob:pw', 'x'], ['curl', `--user=bob:${M}`, 'x']],
    [['curl', '-u', ':tok', 'x'], ['curl', '-u', `:${M}`, 'x']],
    [['curl', 'https://api.example/x?api_key=k123&page=2'], ['curl', `https://api.example/x?api_key=${M}&page=2`]],
    [['curl', '-d', '{"username":"u","password":"p w"}', 'x'], ['curl', '-d', `{"username":"u","password":"${M}"}`, 'x']],
    [['curl', '-d', 'grant_type=password&password=pw&client_secret=cs', 'x'], ['curl', '-d', `grant_type=password&password=${M}&client_secret=${M}`, 'x']],
    [['wget', '--header=Authorization: Basic dXNlcjpwYXNz', 'x'], ['wget', `--header=Authorization: Basic ${M}`, 'x']],
    [['wget', '--http-password=pw', '--http-user=u', 'x'], ['wget', `--http-password=${M}`, '--http-user=u', 'x']],
    [['http', '-a', 'bob:pw', 'GET', 'x'], ['http', '-a', `bob:${M}`, 'GET', 'x']],
    [['app', 'bearer abc123'], ['app', `bearer ${M}`]],
    [['app', `token=${JWT}`], ['app', `token=${M}`]],
  ]);
});

test('cloud and cluster CLIs: aws, kubectl --token, docker run -e / login, helm --set, terraform -var, gh secret', () => {
  check([
    [
      ['env', 'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE', 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws', 's3', 'ls'],
      ['env', `AWS_ACCESS_KEY_ID=${M}`, `AWS_SECRET_ACCESS_KEY=${M}`, 'aws', 's3', 'ls'],
    ],
    [['aws', 'configure', 'set', 'aws_secret_access_key', 'wJalrXUtnFEMI'], ['aws', 'configure', 'set', 'aws_secret_access_key', M]],
    [['aws', 'configure', 'set', 'region', 'us-east-1'], ['aws', 'configure', 'set', 'region', 'us-east-1']],
    [['kubectl', '--token', JWT, 'get', 'pods'], ['kubectl', '--token', M, 'get', 'pods']],
    [['kubectl', `--token=${JWT}`, 'get', 'pods'], ['kubectl', `--token=${M}`, 'get', 'pods']],
    [['kubectl', 'config', 'set-credentials', 'u', '--password=pw', '--client-key-data=LS0tLS1CRUdJTg=='], ['kubectl', 'config', 'set-credentials', 'u', `--password=${M}`, `--client-key-data=${M}`]],
    [
      ['kubectl', 'create', 'secret', 'generic', 'db', '--from-literal=username=admin', '--from-literal', 'pw=x'],
      ['kubectl', 'create', 'secret', 'generic', 'db', `--from-literal=username=${M}`, '--from-literal', `pw=${M}`],
    ],
    [
      ['docker', 'run', '--rm', '-e', 'DB_PASSWORD=x', '-e', 'MODE=prod', '--env=API_TOKEN=t', '-p', '80:80', 'img'],
      ['docker', 'run', '--rm', '-e', `DB_PASSWORD=${M}`, '-e', 'MODE=prod', `--env=API_TOKEN=${M}`, '-p', '80:80', 'img'],
    ],
    [['docker', 'login', '-u', 'me', '-p', 'dpw', 'registry.example'], ['docker', 'login', '-u', 'me', '-p', M, 'registry.example']],
    [['docker', 'login', '-u', 'me', '--password', 'dpw'], ['docker', 'login', '-u', 'me', '--password', M]],
    [['docker', 'build', '--build-arg', 'NPM_TOKEN=npmtok', '.'], ['docker', 'build', '--build-arg', `NPM_TOKEN=${M}`, '.']],
    [['helm', 'install', 'x', '--set', 'auth.rootPassword=rp'], ['helm', 'install', 'x', '--set', `auth.rootPassword=${M}`]],
    [['helm', 'install', 'x', '--set=image.tag=1.2,db.password=pw'], ['helm', 'install', 'x', `--set=image.tag=1.2,db.password=${M}`]],
    [['terraform', 'apply', '-var', 'db_password=x', '-var=api_key=y', '-var', 'region=eu'], ['terraform', 'apply', '-var', `db_password=${M}`, `-var=api_key=${M}`, '-var', 'region=eu']],
    [['az', 'login', '--service-principal', '-u', 'app-id', '-p', 'azpw', '--tenant', 't'], ['az', 'login', '--service-principal', '-u', 'app-id', '-p', M, '--tenant', 't']],
    [['gh', 'secret', 'set', 'DEPLOY_KEY', '--body', 'sv'], ['gh', 'secret', 'set', 'DEPLOY_KEY', '--body', M]],
    [['vault', 'login', 'hvs.CAESIJabcdefghijklmnopqrstuvwxyz'], ['vault', 'login', M]],
    [['vault', 'kv', 'put', 'secret/db', 'password=pw', 'user=app'], ['vault', 'kv', 'put', 'secret/db', `password=${M}`, 'user=app']],
    [['java', '-Dspring.datasource.password=x', '-Djavax.net.ssl.keyStorePassword=y', '-jar', 'app.jar'], ['java', `-Dspring.datasource.password=${M}`, `-Djavax.net.ssl.keyStorePassword=${M}`, '-jar', 'app.jar']],
    [['node', 'server.js', '--jwt-secret', 'js', '--db-pass=dp', '-token', 'gt'], ['node', 'server.js', '--jwt-secret', M, `--db-pass=${M}`, '-token', M]],
  ]);
});

test('git: URL credentials and tokens, extra headers, config values', () => {
  check([
    [['git', 'clone', `https://user:${GHP}@git.example.com/o/r.git`], ['git', 'clone', `https://user:${M}@git.example.com/o/r.git`]],
    [['git', 'clone', `https://${GHP}@git.example.com/o/r.git`], ['git', 'clone', `https://${M}@git.example.com/o/r.git`]],
    [['git', 'clone', 'https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.example/o/r'], ['git', 'clone', `https://oauth2:${M}@gitlab.example/o/r`]],
    [['git', '-c', 'http.extraHeader=AUTHORIZATION: basic dXNlcjpwYXNz', 'fetch'], ['git', '-c', `http.extraHeader=AUTHORIZATION: basic ${M}`, 'fetch']],
    [['git', 'config', '--global', 'github.token', 'tk'], ['git', 'config', '--global', 'github.token', M]],
    [['git', '-C', '/repo', 'config', 'user.password', 'pw'], ['git', '-C', '/repo', 'config', 'user.password', M]],
    [['npm', 'config', 'set', '//registry.example/:_authToken=abc123'], ['npm', 'config', 'set', `//registry.example/:_authToken=${M}`]],
    // The password of a URL runs to the last '@' of the authority.
    [['git', 'clone', 'https://u:p@ss@host/r'], ['git', 'clone', `https://u:${M}@host/r`]],
  ]);
});

test('other tools: sshpass, openssl, ldap, zip/7z, useradd, snmp, freerdp, smbclient, sudo and exec wrappers', () => {
  check([
    [['sshpass', '-p', 'pw', 'ssh', '-p', '22', 'host'], ['sshpass', '-p', M, 'ssh', '-p', '22', 'host']],
    [['sshpass', '-ppw', 'scp', '-P', '22', 'f', 'h:'], ['sshpass', `-p${M}`, 'scp', '-P', '22', 'f', 'h:']],
    [['openssl', 'pkcs12', '-export', '-passin', 'pass:abc', '-passout', 'env:VAR'], ['openssl', 'pkcs12', '-export', '-passin', `pass:${M}`, '-passout', `env:${M}`]],
    [['openssl', 'enc', '-aes-256-cbc', '-k', 'kk', '-in', 'f'], ['openssl', 'enc', '-aes-256-cbc', '-k', M, '-in', 'f']],
    [['ldapsearch', '-x', '-D', 'cn=admin,dc=ex', '-w', 'lpw', '-b', 'dc=ex'], ['ldapsearch', '-x', '-D', 'cn=admin,dc=ex', '-w', M, '-b', 'dc=ex']],
    [['zip', '-P', 'zpw', 'a.zip', 'f'], ['zip', '-P', M, 'a.zip', 'f']],
    [['7z', 'x', '-pArch1ve', 'a.7z'], ['7z', 'x', `-p${M}`, 'a.7z']],
    [['useradd', '-m', '-p', '$6$salt$hash', 'bob'], ['useradd', '-m', '-p', M, 'bob']],
    [['snmpwalk', '-v2c', '-c', 'publ1c', 'host'], ['snmpwalk', '-v2c', '-c', M, 'host']],
    [['xfreerdp', '/u:bob', '/p:Secr3t', '/v:host'], ['xfreerdp', '/u:bob', `/p:${M}`, '/v:host']],
    [['smbclient', '//srv/share', '-U', 'bob%pw'], ['smbclient', '//srv/share', '-U', `bob%${M}`]],
    [['ipmitool', '-I', 'lanplus', '-H', 'bmc', '-U', 'admin', '-P', 'ipw', 'power', 'status'], ['ipmitool', '-I', 'lanplus', '-H', 'bmc', '-U', 'admin', '-P', M, 'power', 'status']],
    // The program's context reaches through wrappers and remote commands.
    [['sudo', '-u', 'dba', 'mysql', '-pSudoPw'], ['sudo', '-u', 'dba', 'mysql', `-p${M}`]],
    [['docker', 'exec', '-it', 'db', 'mysql', '-uroot', '-pX'], ['docker', 'exec', '-it', 'db', 'mysql', '-uroot', `-p${M}`]],
    [['kubectl', 'exec', 'pod', '--', 'redis-cli', '-a', 'rpw'], ['kubectl', 'exec', 'pod', '--', 'redis-cli', '-a', M]],
    [['ssh', '-p', '22', 'db1', 'mysql', '-pRemote'], ['ssh', '-p', '22', 'db1', 'mysql', `-p${M}`]],
    // docker's -p is a port everywhere but in `docker login`.
    [['docker', 'run', '-p', '3306:3306', 'mysql', 'mysqld'], ['docker', 'run', '-p', '3306:3306', 'mysql', 'mysqld']],
  ]);
});

test('shell command strings: scrubbed inside, the rest kept as written', () => {
  check([
    [
      ['sh', '-c', 'PGPASSWORD=pw psql -h db && mysql -uroot -p"Hunter 2" shop; curl -H "Authorization: Bearer zzz" x'],
      ['sh', '-c', `PGPASSWORD=${M} psql -h db && mysql -uroot -p${M} shop; curl -H "Authorization: Bearer ${M}" x`],
    ],
    [['/bin/bash', '-lc', "ssh host 'mysql -pInner db'"], ['/bin/bash', '-lc', `ssh host 'mysql -p${M} db'`]],
    [['bash', '-o', 'pipefail', '-ec', 'export GITHUB_TOKEN=gt; make'], ['bash', '-o', 'pipefail', '-ec', `export GITHUB_TOKEN=${M}; make`]],
    [['su', '-', 'postgres', '-c', 'psql "postgres://a:b@h/d"'], ['su', '-', 'postgres', '-c', `psql "postgres://a:${M}@h/d"`]],
    [['su', '--command=mysql -pX db', 'bob'], ['su', `--command=mysql -p${M} db`, 'bob']],
    [['sh', '-c', 'mysql -p db'], ['sh', '-c', 'mysql -p db']],
    [['find', '.', '-exec', 'sh', '-c', 'curl -H "X-Api-Key: k1" "$1"', '_', '{}', ';'], ['find', '.', '-exec', 'sh', '-c', `curl -H "X-Api-Key: ${M}" "$1"`, '_', '{}', ';']],
    [['bash', '-c', "echo 'password=x' > f; cat <<EOF\ntoken=abc\nEOF"], ['bash', '-c', `echo 'password=${M}' > f; cat <<EOF\ntoken=${M}\nEOF`]],
    [['sh', '-c', 'mysql -pX 2>&1 | tee log'], ['sh', '-c', `mysql -p${M} 2>&1 | tee log`]],
    [['sh', '-c', "docker login -u me -p 'dp w' r.example"], ['sh', '-c', `docker login -u me -p '${M}' r.example`]],
    [['sh', '-c', 'echo $(mysql -pSub -e "select 1")'], ['sh', '-c', `echo $(mysql -p${M} -e "select 1")`]],
    // Positionals that are whole command lines (ssh's remote command, watch's command).
    [['ssh', 'db1', 'mysql -uroot -pRemote -e "show databases"'], ['ssh', 'db1', `mysql -uroot -p${M} -e "show databases"`]],
    [['watch', '-n', '1', 'redis-cli -a pw info'], ['watch', '-n', '1', `redis-cli -a ${M} info`]],
    // Nested shells.
    [['sh', '-c', `bash -c "sshpass -p pw ssh h"`], ['sh', '-c', `bash -c "sshpass -p ${M} ssh h"`]],
    // Unterminated quotes and stray backslashes do not throw and still scrub.
    [['sh', '-c', 'mysql -p"unterminated'], ['sh', '-c', `mysql -p${M}`]],
    [['sh', '-c', 'echo \\'], ['sh', '-c', 'echo \\']],
  ]);
});

test('free text: URLs, tokens, PEM keys, connection strings, headers; non-secrets untouched', () => {
  const cases: [string, string][] = [
    ['https://user:pass@host/x', `https://user:${M}@host/x`],
    ['amqp://guest:guest@rabbit:5672/', `amqp://guest:${M}@rabbit:5672/`],
    ['jdbc:mysql://root:pw@db:3306/x', `jdbc:mysql://root:${M}@db:3306/x`],
    ['redis://:pw@cache', `redis://:${M}@cache`],
    ['see https://a:b@h1 and https://c:d@h2', `see https://a:${M}@h1 and https://c:${M}@h2`],
    ['https://me:pa/ss@host/x', `https://me:${M}@host/x`],
    ['Server=db;Database=x;User Id=sa;Password=p@ss;', `Server=db;Database=x;User Id=sa;Password=${M};`],
    ['DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/=;', `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${M};`],
    ['https://bucket.objects.example.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abcdef', `https://bucket.objects.example.com/k?X-Amz-Credential=${M}&X-Amz-Signature=${M}`],
    ['token: abc def', `token: ${M}`],
    ['password: "x y"', `password: "${M}"`],
    ["{'api_key': 'k'}", `{'api_key': '${M}'}`],
    ['headers={"Authorization": "Bearer abc"}', `headers={"Authorization": "Bearer ${M}"}`],
    ['pass:secret', `pass:${M}`],
    ['xoxb-123456789012-abcdefghijkl', M],
    ['key AKIAIOSFODNN7EXAMPLE used', `key ${M} used`],
    [`jwt ${JWT} end`, `jwt ${M} end`],
    ['sk-proj-abcdefghijklmnopqrstuvwx', M],
    ['AIzaSyA-abcdefghijklmnopqrstuvwxyz012345', M],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\nafter', `${M}\nafter`],
    // Lookalikes.
    ['/etc/passwd', '/etc/passwd'],
    ['passwd: files systemd', `passwd: ${M}`], // nsswitch-style "passwd:" is a secret name by design
    ['arn:aws:secretsmanager:us-east-1:1:secret:x', 'arn:aws:secretsmanager:us-east-1:1:secret:x'],
    ['task-abcdefghijklmnopqrstuvwxyz', 'task-abcdefghijklmnopqrstuvwxyz'],
    ['git@git.example.com:org/repo.git', 'git@git.example.com:org/repo.git'],
    ['ssh://git@host:22/r', 'ssh://git@host:22/r'],
    ['https://host/path/@scope/pkg', 'https://host/path/@scope/pkg'],
    ['http://localhost:8080/api?email=a@b.example', 'http://localhost:8080/api?email=a@b.example'],
    ['eyJ', 'eyJ'],
    ['the bearer', 'the bearer'],
    ['password=', 'password='],
    ['', ''],
  ];
  for (const [input, want] of cases) {
    assert.equal(s.scrubText(input), want, JSON.stringify(input));
    assert.equal(s.scrubText(want), want, `idempotent on ${JSON.stringify(want)}`);
  }
});

test('non-UTF-8 bytes arrive as \\xNN escapes and are masked like any other character', () => {
  check([
    [['mysql', '-p\\xff\\xfepw'], ['mysql', `-p${M}`]],
    [['x', 'DB_PASSWORD=\\xc3(x'], ['x', `DB_PASSWORD=${M}`]],
    [['sh', '-c', 'echo \\xff; mysql -p\\xffpw db'], ['sh', '-c', `echo \\xff; mysql -p${M} db`]],
    [['\\xffprog', '--token', 't'], ['\\xffprog', '--token', M]],
  ]);
});

test('argv[0] (a rewritten process title) is scrubbed as free text', () => {
  check([[['postgres: app app 10.0.0.1(5432) idle'], ['postgres: app app 10.0.0.1(5432) idle']]]);
  check([[['worker https://u:p@queue/x'], [`worker https://u:${M}@queue/x`]]]);
});

test('env: names only unless allowed; allowed values still scrubbed; wildcard; secret names never kept', () => {
  const r = s.scrubEnv([
    'PATH=/usr/bin:/bin',
    'HOME=/root',
    'LC_ALL=C.UTF-8',
    'LC_TIME=en_GB',
    'AWS_SECRET_ACCESS_KEY=wJalr',
    'GITHUB_TOKEN=ghp_x',
    'DATABASE_URL=postgres://a:b@h/d',
    'LD_PRELOAD=/tmp/evil.so',
    'SUDO_COMMAND=/usr/bin/mysql -pX',
    'NOEQUALS',
    'EMPTY=',
    'TERM=xterm=256color',
  ]);
  assert.deepEqual(r.env, [
    { name: 'PATH', value: '/usr/bin:/bin' },
    { name: 'HOME', value: '/root' },
    { name: 'LC_ALL', value: 'C.UTF-8' },
    { name: 'LC_TIME', value: 'en_GB' },
    { name: 'AWS_SECRET_ACCESS_KEY' },
    { name: 'GITHUB_TOKEN' },
    { name: 'DATABASE_URL' },
    { name: 'LD_PRELOAD', value: '/tmp/evil.so' },
    { name: 'SUDO_COMMAND' },
    { name: 'NOEQUALS' },
    { name: 'EMPTY' },
    { name: 'TERM', value: 'xterm=256color' },
  ]);
  // Withheld: AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, DATABASE_URL, SUDO_COMMAND, EMPTY.
  assert.equal(r.scrubbed, 5);
  assert.ok(!('value' in r.env[4]!), 'a withheld value is absent, not undefined');

  const open = new Scrubber({ envAllow: ['*'] });
  const o = open.scrubEnv(['DATABASE_URL=postgres://a:b@h/d', 'API_TOKEN=abc', 'PWD=/srv', 'PLAIN=x']);
  assert.deepEqual(o.env, [
    { name: 'DATABASE_URL', value: `postgres://a:${M}@h/d` },
    { name: 'API_TOKEN', value: M },
    { name: 'PWD', value: '/srv' },
    { name: 'PLAIN', value: 'x' },
  ]);
  assert.equal(o.scrubbed, 2);
  assert.deepEqual(s.scrubEnv([]), { env: [], scrubbed: 0 });
});

test('configuration: replacing fields, custom rules, and a custom mask', () => {
  const c = new Scrubber({
    mask: '[redacted]',
    secretNames: [...DEFAULT_SCRUB_CONFIG.secretNames, '^pin$'],
    valueFlags: [{ flags: ['-k', '--key'], programs: ['vaultctl unseal'], next: true, attached: false }],
    envAllow: ['APP_*'],
  });
  assert.deepEqual(c.scrubArgv(['tool', '--pin', '1234']).argv, ['tool', '--pin', '[redacted]']);
  assert.deepEqual(c.scrubArgv(['vaultctl', 'unseal', '-k', 'kk']).argv, ['vaultctl', 'unseal', '-k', '[redacted]']);
  assert.deepEqual(c.scrubArgv(['vaultctl', 'status', '-k', 'kk']).argv, ['vaultctl', 'status', '-k', 'kk']);
  // valueFlags was replaced, not extended: the default mysql rule is gone, generic names still apply.
  assert.deepEqual(c.scrubArgv(['mysql', '-pX', '--password=y']).argv, ['mysql', '-pX', '--password=[redacted]']);
  assert.deepEqual(c.scrubEnv(['APP_MODE=x', 'PATH=/bin']).env, [{ name: 'APP_MODE', value: 'x' }, { name: 'PATH' }]);
  assert.ok(Object.isFrozen(DEFAULT_SCRUB_CONFIG) && Object.isFrozen(DEFAULT_SCRUB_CONFIG.secretNames));
  assert.ok(Object.isFrozen(DEFAULT_SCRUB_CONFIG.valueFlags[0]!.flags));
  assert.equal(c.isSecretName('DB_PASSWORD'), true);
  assert.equal(c.isSecretName('password_file'), false);
});

test('configuration errors throw InvalidArgumentError naming the field', () => {
  const bad: [unknown, RegExp][] = [
    [{ secretNames: ['password', 'api['] }, /secretNames\[1\] "api\[" is not a valid regular expression/],
    [{ secretNames: ['x*'] }, /secretNames\[0\] "x\*" matches the empty string/],
    [{ secretNames: [] }, /secretNames must not be empty/],
    [{ safeNames: ['(?:'] }, /safeNames\[0\]/],
    [{ tokenPatterns: ['ok_[a-z]+', ''] }, /tokenPatterns\[1\] must be a non-empty string/],
    [{ valueFlags: [{ flags: ['-p'], attached: false, next: false }] }, /valueFlags\[0\]: attached and next are both false/],
    [{ valueFlags: [{ flags: [] }] }, /valueFlags\[0\]\.flags must not be empty/],
    [{ valueFlags: [{ flags: ['-p'], programs: ['a b c'] }] }, /valueFlags\[0\]\.programs\[0\] "a b c"/],
    [{ valueFlags: [{ flags: ['-p'], prog: ['x'] }] }, /valueFlags\[0\]: unknown field "prog"/],
    [{ valueFlags: [{ flags: ['-p'], next: 'yes' }] }, /valueFlags\[0\]\.next must be a boolean/],
    [{ envAllow: ['A*B'] }, /envAllow\[0\] "A\*B"/],
    [{ envAllow: ['A=B'] }, /envAllow\[0\]/],
    [{ mask: '' }, /mask must be a non-empty string/],
    [{ secretName: ['x'] }, /unknown field "secretName"/],
    [{ constructor: ['x'] } as object, /unknown field "constructor"/],
    [{ toString: 'x' } as object, /unknown field "toString"/],
    [{ shells: 'sh' }, /shells must be an array/],
  ];
  for (const [cfg, re] of bad) {
    assert.throws(
      () => new Scrubber(cfg as never),
      (e: unknown) => e instanceof InvalidArgumentError && e.code === 'EINVAL' && re.test(e.message),
      JSON.stringify(cfg),
    );
  }
});

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a planted secret never survives, across templates and random secrets', () => {
  const templates: ((x: string) => string[])[] = [
    (x) => ['mysql', '-uroot', `-p${x}`, 'db'],
    (x) => ['sudo', 'mysqldump', `--password=${x}`],
    (x) => ['sshpass', '-p', x, 'ssh', '-p', '22', 'h'],
    (x) => ['redis-cli', '-a', x],
    (x) => ['curl', '-H', `Authorization: Bearer ${x}`, 'https://h'],
    (x) => ['curl', '-u', `me:${x}`, 'https://h'],
    (x) => ['git', 'clone', `https://me:${x}@h/r`],
    (x) => ['psql', `postgres://me:${x}@h:5432/d`],
    (x) => ['docker', 'run', '-e', `DB_PASSWORD=${x}`, 'img'],
    (x) => ['kubectl', '--token', x, 'get', 'pods'],
    (x) => ['app', `--client-secret=${x}`],
    (x) => ['sh', '-c', `PGPASSWORD='${x}' psql -h h`],
    (x) => ['bash', '-c', `mysql -uroot -p'${x}' -e 'select 1'`],
    (x) => ['python3', '-c', `requests.get(u, headers={"X-Api-Key": "${x}"})`],
    (x) => ['aws', 'configure', 'set', 'aws_secret_access_key', x],
    (x) => ['env', `GITHUB_TOKEN=${x}`, 'gh', 'pr', 'list'],
  ];
  const rand = rng(42);
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!%+,.:=@^_~/';
  for (let round = 0; round < 50; round++) {
    let x = '';
    const n = 10 + Math.floor(rand() * 20);
    // Start with a letter so the secret is not mistaken for a flag; no quotes or spaces, so the templates
    // stay well-formed.
    x += 'Zq';
    for (let i = 0; i < n; i++) x += alphabet[Math.floor(rand() * alphabet.length)];
    for (const t of templates) {
      const out = s.scrubArgv(t(x)).argv.join('\u0000');
      assert.ok(!out.includes(x), `secret ${x} survived in ${JSON.stringify(t(x))}: ${out}`);
    }
  }
});

test('hostile input: random strings of shell and separator characters never throw and keep their shape', () => {
  const rand = rng(7);
  const alphabet = `ab-=:;&|"'\\\`$(){}@/ \n\tpPxX_.?#,<>eyJ*~%`;
  const words = ['mysql', 'sh', '-c', '-p', '--password', 'password=', 'https://', 'bearer', 'ghp_', 'Authorization:'];
  for (let round = 0; round < 2000; round++) {
    const argv: string[] = [];
    const n = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < n; i++) {
      let a = '';
      const len = Math.floor(rand() * 40);
      for (let k = 0; k < len; k++) a += rand() < 0.1 ? words[Math.floor(rand() * words.length)] : alphabet[Math.floor(rand() * alphabet.length)];
      argv.push(a);
    }
    const r = s.scrubArgv(argv);
    assert.equal(r.argv.length, argv.length);
    assert.ok(r.scrubbed >= 0 && r.scrubbed <= argv.length);
    for (const a of argv) assert.equal(typeof s.scrubText(a), 'string');
    s.scrubEnv(argv);
  }
});

test('a command line the rules leave alone is remembered; one they mask never is', () => {
  const sc = new Scrubber();
  // Clean: the first call gives the caller's array back (not frozen, not copied); later calls a frozen copy.
  const clean = ['sh', '-c', 'id -u; uname -r; date +%s'];
  const first = sc.scrubArgv(clean);
  assert.equal(first.argv, clean);
  assert.equal(Object.isFrozen(clean), false);
  const again = sc.scrubArgv([...clean]);
  assert.deepEqual(again, { argv: clean, scrubbed: 0 });
  assert.ok(Object.isFrozen(again.argv));
  assert.equal(sc.scrubArgv([...clean]).argv, again.argv);
  // Masked: scrubbed afresh every time, so each call counts its masking and no memo holds the secret.
  const secret = ['mysql', '-uroot', '-pHunter2', 'shop'];
  const a = sc.scrubArgv([...secret]);
  const b = sc.scrubArgv([...secret]);
  assert.deepEqual(a, { argv: ['mysql', '-uroot', `-p${M}`, 'shop'], scrubbed: 1 });
  assert.deepEqual(b, a);
  assert.notEqual(b.argv, a.argv);
  // Arrays that differ only in how their words split are different command lines.
  assert.deepEqual(sc.scrubArgv(['echo', 'a b']).argv, ['echo', 'a b']);
  assert.deepEqual(sc.scrubArgv(['echo', 'a', 'b']).argv, ['echo', 'a', 'b']);
  // The memo belongs to the rules: stricter rules mask what the old ones remembered as clean.
  const colour = ['paint', '--colour', 'blue'];
  assert.equal(sc.scrubArgv(colour).scrubbed, 0);
  assert.equal(sc.scrubArgv([...colour]).scrubbed, 0);
  const strict = new Scrubber({ secretNames: [...DEFAULT_SCRUB_CONFIG.secretNames, 'colou?r'] });
  assert.deepEqual(strict.scrubArgv([...colour]), { argv: ['paint', '--colour', M], scrubbed: 1 });
  // Long command lines are scrubbed every time, not remembered, and come out the same.
  const long = ['curl', '-d', 'x'.repeat(2000), 'https://user:pw@example.invalid/'];
  const l1 = sc.scrubArgv([...long]);
  assert.deepEqual(sc.scrubArgv([...long]), l1);
  assert.equal(l1.argv[3], `https://user:${M}@example.invalid/`);
});
