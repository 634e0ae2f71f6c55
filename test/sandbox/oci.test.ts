// OciRuntimeSandbox with runc and crun (Debian packages; CI installs both): the same observable
// behaviour as the namespace sandbox on the busybox fixture, and nothing left behind — no mount in
// the host table, no per-run dir, no container in the runtime's state.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRuntime, ociConfig, OciRuntimeSandbox } from '../../src/sandbox/oci.js';
import { SandboxError } from '../../src/sandbox/namespace.js';
import { DEFAULT_HOSTS } from '../../src/sandbox/env.js';
import { assertClean, collector, type Fixture, makeFixture, overlayMounts, skipReason, tree } from './fixture.js';

test('ociConfig: Docker defaults for root and for a user', () => {
  const spec = {
    rootfs: { lowerDirs: [], upperDir: '/u', workDir: '/w' },
    initDir: '/i',
    args: ['/bin/sh', '-c', 'true'],
    env: ['PATH=/bin'],
    cwd: '/src',
    user: { uid: 1000, gid: 1000, additionalGids: [1000, 50] },
    hostname: 'abc',
    network: 'none' as const,
    extraMounts: [{ type: 'bind' as const, source: '/host/ctx', target: '/ctx', readonly: true }, { type: 'tmpfs' as const, target: '/cache' }],
  };
  const inputs = { rootfsPath: '/b/rootfs', etc: { hosts: '/e/hosts', hostname: '/e/hostname', resolvConf: '/e/resolv.conf' }, readyFile: '/r', sh: '/bin/sh', cgroupsPath: 'x', cgroup2: false };
  const c = ociConfig(spec, inputs);
  assert.deepEqual(c.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50], umask: 0o022 });
  assert.equal(c.process.capabilities.bounding.length, 14);
  assert.ok(c.process.capabilities.bounding.includes('CAP_NET_BIND_SERVICE'));
  assert.deepEqual(c.process.capabilities.effective, []);
  assert.deepEqual(c.process.capabilities.permitted, []);
  assert.deepEqual(c.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'network']);
  assert.deepEqual(
    c.mounts.map((m) => m.destination),
    ['/proc', '/dev', '/dev/pts', '/sys', '/dev/mqueue', '/dev/shm', '/etc/resolv.conf', '/etc/hostname', '/etc/hosts', '/ctx', '/cache'],
  );
  assert.deepEqual(c.mounts[9], { destination: '/ctx', type: 'bind', source: '/host/ctx', options: ['rbind', 'ro'] });
  assert.deepEqual(c.mounts[10], { destination: '/cache', type: 'tmpfs', source: 'tmpfs', options: ['rw'] });
  assert.ok(c.linux.maskedPaths.includes('/proc/kcore'));
  assert.ok(c.linux.readonlyPaths.includes('/proc/sys'));
  const rootCfg = ociConfig({ ...spec, user: { uid: 0, gid: 0, additionalGids: [0] }, network: 'default' }, { ...inputs, cgroup2: true });
  assert.deepEqual(rootCfg.process.capabilities.effective, rootCfg.process.capabilities.bounding);
  assert.deepEqual(rootCfg.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'cgroup']);
  assert.ok(rootCfg.mounts.some((m) => m.destination === '/sys/fs/cgroup' && m.type === 'cgroup2'));
});

test('a missing runtime is a clear error', { skip: process.getuid?.() !== 0 ? 'needs root' : undefined }, async () => {
  const sb = new OciRuntimeSandbox('/nonexistent/runc');
  await assert.rejects(
    sb.run({ rootfs: { lowerDirs: [], upperDir: '/u', workDir: '/w' }, initDir: '/i', args: ['/bin/true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, hostname: 'h', network: 'default' }),
    { code: 'SANDBOX_TOOL' },
  );
});

for (const runtime of ['runc', 'crun'] as const) {
  const binary = findRuntime(runtime);
  const skip = skipReason() ?? (binary === undefined ? `needs ${runtime} (apt-get install ${runtime})` : undefined);

  describe(`OciRuntimeSandbox(${runtime})`, { skip }, () => {
    let fx: Fixture;
    let sb: OciRuntimeSandbox;
    let mountsBefore: string[];
    let resolvConf: string;
    let stateDir: string;

    before(async () => {
      fx = await makeFixture();
      resolvConf = join(fx.dir, 'host-resolv.conf');
      writeFileSync(resolvConf, 'nameserver 192.0.2.53\nsearch example.test\n');
      stateDir = join(fx.dir, 'state');
      sb = new OciRuntimeSandbox(runtime, { tmpDir: fx.tmp, hostResolvConf: resolvConf, stateDir });
    });
    after(() => fx?.cleanup());
    beforeEach(() => {
      mountsBefore = overlayMounts(fx);
    });
    afterEach(() => {
      assertClean(fx, mountsBefore);
      const listed = execFileSync(binary as string, ['--root', stateDir, 'list', '-q'], { encoding: 'utf8' });
      assert.equal(listed.trim(), '', `containers left in ${runtime}'s state`);
    });

    test('a write leaves only that file in the upper dir (no dev/proc/sys/etc entries)', async () => {
      const spec = fx.spec({ args: ['/bin/sh', '-c', 'echo hi > /x; ls /dev /proc /sys >/dev/null; cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null'] });
      const r = await sb.run(spec);
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.deepEqual(tree(spec.rootfs.upperDir), ['x']);
      assert.equal(readFileSync(join(spec.rootfs.upperDir, 'x'), 'utf8'), 'hi\n');
    });

    test('the command is PID 1 and /proc only shows the namespace', async () => {
      const c = collector();
      const r = await sb.run(fx.spec({ args: ['/bin/sh', '-c', 'echo $$; ls /proc | grep "^[0-9]*$"'], ...c }));
      assert.equal(r.exitCode, 0, r.stderrTail);
      const [pid, ...procs] = c.out().trim().split('\n');
      assert.equal(pid, '1');
      assert.ok(procs.length >= 1 && procs.every((p) => Number(p) < 10), `unexpected pids: ${procs.join(' ')}`);
    });

    test('hostname, /etc/hostname, Docker-style /etc/hosts and the host resolv.conf', async () => {
      const c = collector();
      const r = await sb.run(
        fx.spec({ args: ['/bin/sh', '-c', 'hostname; echo ---; cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf'], hostname: 'box-7', ...c }),
      );
      assert.equal(r.exitCode, 0, r.stderrTail);
      const [hn, hnFile, hosts, resolv] = c.out().split('---\n');
      assert.equal(hn, 'box-7\n');
      assert.equal(hnFile, 'box-7\n');
      assert.equal(hosts, DEFAULT_HOSTS + '127.0.1.1\tbox-7\n');
      assert.equal(resolv, 'nameserver 192.0.2.53\nsearch example.test\n');
      assert.notEqual(hostname(), 'box-7', 'the host hostname must not change');
    });

    test('/dev: null, zero, urandom, tty nodes, pts, shm (1777), fd links', async () => {
      const c = collector();
      const r = await sb.run(
        fx.spec({
          args: [
            '/bin/sh',
            '-c',
            'echo gone > /dev/null && head -c 16 /dev/urandom | wc -c && head -c 4 /dev/zero | wc -c && stat -c "%F %t:%T" /dev/null /dev/tty && stat -c %a /dev/shm && readlink /dev/fd && ls /dev | tr "\\n" " "',
          ],
          ...c,
        }),
      );
      assert.equal(r.exitCode, 0, r.stderrTail);
      const lines = c.out().trim().split('\n');
      assert.deepEqual(lines.slice(0, 6), ['16', '4', 'character special file 1:3', 'character special file 5:0', '1777', '/proc/self/fd']);
      for (const d of ['full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']) {
        assert.ok((lines[6] ?? '').split(' ').includes(d), `/dev/${d} missing: ${lines[6]}`);
      }
    });

    test('/sys is read-only sysfs, /proc/sys read-only, masked /proc/keys', async () => {
      const c = collector();
      const keys = existsSync('/proc/keys');
      const r = await sb.run(
        fx.spec({
          args: ['/bin/sh', '-c', 'grep " /sys " /proc/mounts; grep " /proc/sys " /proc/mounts; touch /sys/x 2>&1; echo 1 > /proc/sys/kernel/hostname 2>&1; [ ! -e /proc/keys ] || wc -c < /proc/keys; echo end'],
          ...c,
        }),
      );
      assert.equal(r.exitCode, 0, r.stderrTail);
      const out = c.out();
      assert.match(out, /^sysfs \/sys sysfs ro,/m);
      assert.match(out, /^proc \/proc\/sys proc ro,/m);
      assert.match(out, /Read-only file system/);
      assert.match(out, keys ? /^0\nend\n$/m : /end\n$/);
    });

    test('network none: only lo, and it is up; default shares the host network', async () => {
      const c = collector();
      const r = await sb.run(fx.spec({ args: ['/bin/sh', '-c', 'cat /proc/net/dev; ip link'], network: 'none', ...c }));
      assert.equal(r.exitCode, 0, r.stderrTail);
      const out = c.out();
      const ifaces = out
        .split('\n')
        .slice(2)
        .map((l) => l.split(':')[0]?.trim())
        .filter((l) => l !== undefined && l !== '' && !/^\d/.test(l) && !l.startsWith('link'));
      assert.deepEqual(ifaces, ['lo']);
      assert.match(out, /lo: <LOOPBACK,UP/);
      const c2 = collector();
      assert.equal((await sb.run(fx.spec({ args: ['/bin/cat', '/etc/hosts', '/proc/net/dev'], ...c2 }))).exitCode, 0);
      assert.equal(c2.out().split('\n').length, (DEFAULT_HOSTS + '127.0.1.1\ttsbuild-test\n' + readFileSync('/proc/net/dev', 'utf8')).split('\n').length);
    });

    test('user app (1000) with supplementary groups, no capabilities', async () => {
      const c = collector();
      const r = await sb.run(
        fx.spec({
          args: ['/bin/sh', '-c', 'id -u; id -g; id -G; grep -E "^(CapEff|CapBnd)" /proc/self/status; touch /rootonly 2>&1 | head -1'],
          user: { uid: 1000, gid: 1000, additionalGids: [1000, 50] },
          ...c,
        }),
      );
      assert.equal(r.exitCode, 0, r.stderrTail);
      const lines = c.out().trim().split('\n');
      assert.equal(lines[0], '1000');
      assert.equal(lines[1], '1000');
      assert.deepEqual((lines[2] ?? '').split(' ').sort(), ['1000', '50']);
      assert.equal(lines[3], 'CapEff:\t0000000000000000');
      assert.equal(lines[4], 'CapBnd:\t00000000a80425fb');
      assert.match(lines[5] ?? '', /Permission denied/);
    });

    test('root gets exactly Docker default capabilities', async () => {
      const c = collector();
      const r = await sb.run(fx.spec({ args: ['/bin/sh', '-c', 'grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status; id -G'], ...c }));
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(c.out(), 'CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n0\n');
    });

    test('a missing cwd is created 0755 and shows up in the upper dir; an existing one is not touched', async () => {
      const c = collector();
      const spec = fx.spec({ args: ['/bin/pwd'], cwd: '/work/dir', ...c });
      const r = await sb.run(spec);
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(c.out(), '/work/dir\n');
      assert.deepEqual(tree(spec.rootfs.upperDir), ['work', 'work/dir']);
      assert.equal(statSync(join(spec.rootfs.upperDir, 'work/dir')).mode & 0o7777, 0o755);
      const spec2 = fx.spec({ args: ['/bin/true'], cwd: '/home/app' });
      assert.equal((await sb.run(spec2)).exitCode, 0);
      assert.deepEqual(tree(spec2.rootfs.upperDir), []);
    });

    test('a cwd through an absolute symlink is created inside the rootfs, never on the host', async () => {
      const unique = `tsbuild-oci-escape-${process.pid}-${Date.now()}`;
      const { upperDir, workDir } = fx.snapshot();
      symlinkSync(`/${unique}`, join(upperDir, 'link'));
      const c = collector();
      const r = await sb.run({ ...fx.spec({ args: ['/bin/pwd'], cwd: '/link/sub', rootfs: { lowerDirs: [fx.lower], upperDir, workDir } }), ...c });
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(c.out(), `/${unique}/sub\n`);
      assert.equal(existsSync(`/${unique}`), false, 'created on the host!');
      assert.ok(statSync(join(upperDir, unique, 'sub')).isDirectory());
    });

    test('exit codes and the last 20 lines of stderr', async () => {
      const c = collector();
      const r = await sb.run(fx.spec({ args: ['/bin/sh', '-c', 'echo out; i=1; while [ $i -le 30 ]; do echo "err $i" >&2; i=$((i+1)); done; exit 3'], ...c }));
      assert.equal(r.exitCode, 3);
      assert.equal(r.signal, undefined);
      const lines = r.stderrTail.split('\n');
      assert.equal(lines.length, 20);
      assert.equal(lines[0], 'err 11');
      assert.equal(lines[19], 'err 30');
      assert.equal(c.out(), 'out\n');
      assert.equal((await sb.run(fx.spec({ args: ['/bin/false'] }))).exitCode, 1);
      assert.equal((await sb.run(fx.spec({ args: ['/bin/sh', '-c', 'exit 255'] }))).exitCode, 255);
    });

    test('a missing executable is exit code 127, a non-executable file 126', async () => {
      const r = await sb.run(fx.spec({ args: ['/nope'] }));
      assert.equal(r.exitCode, 127, r.stderrTail);
      assert.match(r.stderrTail, /nope/);
      const r2 = await sb.run(fx.spec({ args: ['/etc/passwd'] }));
      assert.equal(r2.exitCode, 126, r2.stderrTail);
    });

    test('the env is exactly the given one, in order (with HOME: runtimes add it when missing)', async () => {
      const c = collector();
      const env = ['PATH=/bin', 'A=b c', 'EMPTY=', 'MULTI=line1\nline2', 'Z==eq', 'HOME=/root'];
      const r = await sb.run(fx.spec({ args: ['/bin/env'], env, ...c }));
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(c.out(), env.join('\n') + '\n');
    });

    test('deleting a lower file leaves a 0/0 char device whiteout; umask is 022', async () => {
      const spec = fx.spec({ args: ['/bin/sh', '-c', 'rm /etc/deleteme && touch /newfile && mkdir /newdir'] });
      const r = await sb.run(spec);
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.deepEqual(tree(spec.rootfs.upperDir), ['etc', 'etc/deleteme', 'newdir', 'newfile']);
      const wh = lstatSync(join(spec.rootfs.upperDir, 'etc/deleteme'));
      assert.ok(wh.isCharacterDevice());
      assert.equal(wh.rdev, 0);
      assert.equal(statSync(join(spec.rootfs.upperDir, 'newfile')).mode & 0o777, 0o644);
      assert.equal(statSync(join(spec.rootfs.upperDir, 'newdir')).mode & 0o777, 0o755);
    });

    test('writes to /etc/hosts go to the bind mount, not the layer', async () => {
      const spec = fx.spec({ args: ['/bin/sh', '-c', 'echo "1.2.3.4 extra" >> /etc/hosts && grep -c extra /etc/hosts'] });
      const r = await sb.run(spec);
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.deepEqual(tree(spec.rootfs.upperDir), []);
    });

    test('stdout is streamed while the command runs', async () => {
      let first = 0;
      const t0 = Date.now();
      const r = await sb.run(
        fx.spec({
          args: ['/bin/sh', '-c', 'echo first; sleep 1; echo second'],
          onStdout: (chunk) => {
            if (first === 0 && chunk.toString().includes('first')) first = Date.now() - t0;
          },
        }),
      );
      assert.equal(r.exitCode, 0);
      const total = Date.now() - t0;
      assert.ok(first > 0 && first < total - 500, `first chunk at ${first} ms of ${total}`);
    });

    test('abort kills the whole tree and deletes the container', async () => {
      const tag = String(6000 + (process.pid % 1000));
      const ac = new AbortController();
      const t0 = Date.now();
      setTimeout(() => ac.abort(), 500);
      await assert.rejects(sb.run(fx.spec({ args: ['/bin/sh', '-c', `setsid sleep 1${tag} & sleep 2${tag}`] }), ac.signal), { name: 'AbortError' });
      assert.ok(Date.now() - t0 < 5000);
      const left = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(tag);
          } catch {
            return false;
          }
        });
      assert.deepEqual(left, []);
    });

    test('a command SIGKILLed from outside is 137/SIGKILL', async () => {
      const tag = `7${process.pid % 10000}`;
      const timer = setInterval(() => {
        for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          try {
            if (readFileSync(`/proc/${p}/cmdline`, 'latin1') === `sleep\0${tag}\0`) process.kill(Number(p), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }, 100);
      try {
        const r = await sb.run(fx.spec({ args: ['sleep', tag] }));
        assert.deepEqual(r, { exitCode: 137, signal: 'SIGKILL', stderrTail: '' });
      } finally {
        clearInterval(timer);
      }
    });

    test('an already aborted signal runs nothing', async () => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(sb.run(fx.spec({ args: ['/bin/true'] }), ac.signal), { name: 'AbortError' });
    });

    test('extra mounts: tmpfs and read-only bind at missing targets leave nothing in the upper dir', async () => {
      const src = mkdtempSync(join(tmpdir(), 'tsbuild-bind-'));
      try {
        writeFileSync(join(src, 'data'), 'from host\n');
        const spec = fx.spec({
          args: ['/bin/sh', '-c', 'echo t > /cache/x && cat /mnt/ctx/data && (echo no > /mnt/ctx/data) 2>/dev/null || echo ro'],
          extraMounts: [
            { type: 'tmpfs', target: '/cache' },
            { type: 'bind', source: src, target: '/mnt/ctx', readonly: true },
          ],
        });
        const c = collector();
        const r = await sb.run({ ...spec, ...c });
        assert.equal(r.exitCode, 0, r.stderrTail);
        assert.equal(c.out(), 'from host\nro\n');
        assert.deepEqual(tree(spec.rootfs.upperDir), []);
        assert.equal(readFileSync(join(src, 'data'), 'utf8'), 'from host\n');
      } finally {
        rmSync(src, { recursive: true, force: true });
      }
    });

    test('scratch: no image layers, the init layer is the only lowerdir', async () => {
      const { upperDir, workDir } = fx.snapshot();
      mkdirSync(join(upperDir, 'bin'));
      copyFileSync('/bin/busybox', join(upperDir, 'bin/busybox'));
      const c = collector();
      const r = await sb.run(fx.spec({ args: ['/bin/busybox', 'ls', '-a', '/'], rootfs: { lowerDirs: [], upperDir, workDir }, ...c }));
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.deepEqual(c.out().trim().split('\n').sort(), ['.', '..', '.dockerenv', 'bin', 'dev', 'etc', 'proc', 'sys']);
    });

    test('a plain-directory rootfs (copy snapshotter) is bound, not overlaid', async () => {
      const plainDir = join(fx.dir, `plain-${runtime}`);
      execFileSync('cp', ['-a', fx.lower, plainDir]);
      const c = collector();
      const spec = fx.spec({ args: ['/bin/sh', '-c', 'echo $$; hostname; echo p > /made; rm /etc/deleteme'], hostname: 'plainbox', ...c });
      const r = await sb.run({ ...spec, rootfs: { ...spec.rootfs, plainDir } });
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(c.out(), '1\nplainbox\n');
      assert.equal(readFileSync(join(plainDir, 'made'), 'utf8'), 'p\n');
      assert.equal(existsSync(join(plainDir, 'etc/deleteme')), false);
      assert.deepEqual(tree(spec.rootfs.upperDir), [], 'the upper dir is not used');
      for (const p of ['proc', 'sys', 'dev/pts', 'etc/hosts']) assert.ok(existsSync(join(plainDir, p)), `mount point ${p}`);
    });

    test('a cwd that is a file is a setup error, not an exit code', async () => {
      await assert.rejects(sb.run(fx.spec({ args: ['/bin/true'], cwd: '/etc/passwd' })), (e: unknown) => {
        assert.ok(e instanceof SandboxError);
        assert.equal(e.code, 'SANDBOX_SETUP');
        assert.match(e.message, /not a directory/);
        return true;
      });
    });

    test('bad specs are refused before anything runs', async () => {
      const bad = [
        fx.spec({ args: [] }),
        fx.spec({ args: ['/bin/true'], env: ['NOEQUALS'] }),
        fx.spec({ args: ['/bin/true'], cwd: 'relative' }),
        fx.spec({ args: ['/bin/true'], hostname: 'x'.repeat(65) }),
        fx.spec({ args: ['/bin/true'], user: { uid: -1, gid: 0, additionalGids: [] } }),
      ];
      for (const s of bad) await assert.rejects(sb.run(s), { code: 'SANDBOX_SPEC' });
    });

    test('runs can go in parallel', async () => {
      const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => sb.run(fx.spec({ args: ['/bin/sh', '-c', `echo ${i} > /n`] }))));
      assert.deepEqual(
        results.map((r) => [r.exitCode, r.stderrTail]),
        [1, 2, 3, 4, 5, 6].map(() => [0, '']),
      );
    });

    test('no cgroup is left', () => {
      const leftovers: string[] = [];
      const walk = (d: string, depth: number) => {
        if (depth > 4) return;
        let names: string[] = [];
        try {
          names = readdirSync(d);
        } catch {
          return;
        }
        for (const n of names) {
          const p = join(d, n);
          if (n.startsWith('tsbuild-')) leftovers.push(p);
          else if (!n.includes('.') && lstatSync(p).isDirectory()) walk(p, depth + 1);
        }
      };
      walk('/sys/fs/cgroup', 0);
      assert.deepEqual(leftovers, []);
    });

    test('timing: a trivial RUN', async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await sb.run(fx.spec({ args: ['/bin/true'] }));
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      t.diagnostic(`${runtime}: trivial RUN median ${times[5]?.toFixed(1)} ms, min ${times[0]?.toFixed(1)} ms`);
    });
  });
}
