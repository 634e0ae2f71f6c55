/**
 * The sandbox against the real thing: the same probes run as RUN steps by docker 20.10's classic
 * builder (private dockerd, see test/support/dockerd.ts) and by NamespaceSandbox on the same
 * busybox rootfs, outputs compared after replacing the container's hostname.
 *
 * Known differences, left out of the comparison: cgroup v1 mounts under /sys/fs/cgroup (dockerd
 * mounts the controllers read-only; we do not), seccomp (Docker's default profile), ulimits, and
 * the overlay mount's own line in /proc/mounts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfsTar, dockerUnavailableReason, importBusyboxBase, startDockerd } from '../support/dockerd.js';
import { createInitLayer } from '../../src/snapshot/overlay.js';
import { NamespaceSandbox } from '../../src/sandbox/namespace.js';
import { dockerRunEnv } from '../../src/sandbox/env.js';
import { resolveUser } from '../../src/sandbox/users.js';
import { skipReason } from './fixture.js';

const PROBE_ROOT = [
  'echo pid=$$',
  'id',
  'umask',
  'env | sort',
  "grep -E '^Cap' /proc/self/status",
  "stat -c '%n %F %a %u %g %t:%T' /dev/* | sort",
  'for f in /dev/*; do if [ -L $f ]; then echo $f $(readlink $f); fi; done',
  'ls -a /',
  "grep -v '^overlay ' /proc/mounts | grep -v ' /sys/fs/cgroup'",
  'cat /etc/hosts',
  'cat /etc/hostname',
  'hostname',
  "stat -c '%n %a %u %g %s' /etc /etc/hosts /etc/hostname /etc/resolv.conf /.dockerenv /etc/mtab /proc /sys",
  'readlink /etc/mtab',
  'cut -d: -f1 /proc/net/dev',
  'pwd',
].join('; ');
const PROBE_APP = ['id', 'env | sort', "grep -E '^Cap(Eff|Prm)' /proc/self/status"].join('; ');
const LAYER_CMD = 'echo hi > /x && rm /etc/group && mkdir -p /a/b && touch /a/b/c && chmod 600 /etc/passwd';

const skip = skipReason() ?? dockerUnavailableReason();

function between(out: string, id: string): string {
  const m = new RegExp(`==B${id}==\\n([\\s\\S]*?)==E${id}==`).exec(out);
  assert.ok(m, `no output ${id} in:\n${out}`);
  return m[1] as string;
}

/** name type mode (whiteouts as .wh. files, like the layer tar) of an upper dir. */
function listUpper(upper: string): string[] {
  const out: string[] = [];
  for (const rel of (readdirSync(upper, { recursive: true }) as string[]).map(String)) {
    const st = lstatSync(join(upper, rel));
    if (st.isCharacterDevice() && st.rdev === 0) {
      const i = rel.lastIndexOf('/');
      out.push(`${rel.slice(0, i + 1)}.wh.${rel.slice(i + 1)} file`);
    } else {
      out.push(`${rel} ${st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file'} ${(st.mode & 0o7777).toString(8)}`);
    }
  }
  return out.sort();
}

test('RUN in NamespaceSandbox looks like RUN in docker 20.10 (classic builder)', { skip, timeout: 5 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-sbx-diff-'));
  const d = await startDockerd();
  try {
    // --- docker
    await importBusyboxBase(d, ['busybox:latest']);
    const ctx = join(dir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        'FROM busybox:latest',
        `RUN echo ==B1==; ${PROBE_ROOT}; echo ==E1==`,
        'USER app',
        `RUN echo ==B2==; ${PROBE_APP}; echo ==E2==`,
        'USER root',
        `RUN ${LAYER_CMD}`,
        '',
      ].join('\n'),
    );
    const built = await d.docker(['build', '--no-cache', '-t', 'tsbuild-probe', ctx], { env: { DOCKER_BUILDKIT: '0' } });
    assert.equal(built.code, 0, built.stderr + built.stdout);
    const ids = [...built.stdout.matchAll(/---> Running in ([0-9a-f]{12})/g)].map((m) => m[1] as string);
    let dockerOut = built.stdout;
    for (const id of ids) dockerOut = dockerOut.replaceAll(id, 'CONTAINER');
    const saved = join(dir, 'probe.tar');
    assert.equal((await d.docker(['save', '-o', saved, 'tsbuild-probe'])).code, 0);
    const unpacked = join(dir, 'saved');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xf', saved, '-C', unpacked]);
    const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
    const lastLayer = manifest[0]?.Layers.at(-1) as string;
    const dockerLayer = execFileSync('tar', ['-tvf', join(unpacked, lastLayer)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => {
        const [perm, , , , , name] = l.split(/\s+/);
        const type = perm?.[0] === 'd' ? 'dir' : perm?.[0] === 'l' ? 'symlink' : 'file';
        const clean = (name as string).replace(/\/$/, '');
        if (clean.split('/').at(-1)?.startsWith('.wh.')) return `${clean} file`;
        const bits = (perm as string).slice(1);
        let mode = 0;
        for (let i = 0; i < 9; i++) if (bits[i] !== '-') mode |= 1 << (8 - i);
        return `${clean} ${type} ${mode.toString(8)}`;
      })
      .sort();

    // --- tsbuild, same rootfs
    const lower = join(dir, 'lower');
    mkdirSync(lower);
    execFileSync('tar', ['-xf', '-', '-C', lower], { input: busyboxRootfsTar() });
    const init = join(dir, 'init');
    await createInitLayer(init, { lowerDirs: [lower] });
    const passwd = readFileSync(join(lower, 'etc/passwd'), 'utf8');
    const group = readFileSync(join(lower, 'etc/group'), 'utf8');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const sb = new NamespaceSandbox({ tmpDir: tmp });
    let n = 0;
    const run = async (user: string, script: string) => {
      n++;
      const upperDir = join(dir, `upper${n}`);
      const workDir = join(dir, `work${n}`);
      mkdirSync(upperDir);
      mkdirSync(workDir);
      const u = resolveUser(user, passwd, group);
      const hostname = 'c0ffee0c0ffe';
      const out: Buffer[] = [];
      const r = await sb.run({
        rootfs: { lowerDirs: [lower], upperDir, workDir },
        initDir: init,
        args: ['/bin/sh', '-c', script],
        env: dockerRunEnv([], { hostname, home: u.home }),
        cwd: '/',
        user: u,
        hostname,
        network: 'none', // the harness's dockerd runs --bridge=none: RUN containers only have lo
        onStdout: (c) => out.push(c),
      });
      assert.equal(r.exitCode, 0, r.stderrTail);
      return { out: Buffer.concat(out).toString('utf8').replaceAll(hostname, 'CONTAINER'), upperDir };
    };
    const ours1 = await run('', `echo ==B1==; ${PROBE_ROOT}; echo ==E1==`);
    const ours2 = await run('app', `echo ==B2==; ${PROBE_APP}; echo ==E2==`);
    const ours3 = await run('', LAYER_CMD);

    assert.equal(between(ours1.out, '1'), between(dockerOut, '1'));
    assert.equal(between(ours2.out, '2'), between(dockerOut, '2'));
    assert.deepEqual(listUpper(ours3.upperDir), dockerLayer);
    assert.deepEqual(readdirSync(tmp), []);
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
