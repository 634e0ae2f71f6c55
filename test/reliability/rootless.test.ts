/**
 * Rootless tsbuild (src/cli/rootless.ts, src/sys/userns.ts): the id mapping and re-exec command
 * (pure), and — as root, with the CI user `tsbuild-ci` (.ci/run makes it, with /etc/subuid and
 * /etc/subgid ranges) — the CLI run as that user: import, a build whose RUN steps chown, make
 * whiteouts and an opaque dir, `tsbuild run`, and the layer as the namespace sees it.
 *
 * The e2e differential suite against docker also runs as that user: rootless-e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { innerCommand, needsNamespace, rootlessHint, USERNS_ENV } from '../../src/cli/rootless.js';
import { findSubIdRange, innerId, isUserNamespaceMap, mappingFor, parseIdMap, planMapping, unshareUserArgs } from '../../src/sys/userns.js';
import { busyboxRootfsTar } from '../support/dockerd.js';
import { describeTree, imageIdForRef, readImageLayers } from '../support/e2e-layers.js';
import { chownTree, openPath, runAsUser, testUser, viewInside } from '../support/rootless.js';

test('subordinate ranges: the first line for the user by name or uid', () => {
  const text = 'alice:100000:65536\n# x\nbob:200000:1000\n1001:300000:65536\nbob:400000:65536\n';
  assert.deepEqual(findSubIdRange(text, 'bob', 1002), { start: 200000, count: 1000 });
  assert.deepEqual(findSubIdRange(text, 'carol', 1001), { start: 300000, count: 65536 });
  assert.equal(findSubIdRange(text, 'dave', 1003), undefined);
  assert.equal(findSubIdRange('eve:x:1\neve:0:0\n', 'eve', 1), undefined);
});

test('mapping: 0 → the user, 1… → its range; single without helpers or ranges', () => {
  const m = planMapping(1001, 1001, { start: 100000, count: 65536 }, { start: 100000, count: 65536 });
  assert.equal(m.mode, 'subid');
  assert.deepEqual(unshareUserArgs(m), ['--user', '--map-root-user', '--map-users=100000,1,65536', '--map-groups=100000,1,65536']);
  assert.equal(innerId(m.uid, 1001), 0);
  assert.equal(innerId(m.uid, 100000), 1);
  assert.equal(innerId(m.uid, 100999), 1000);
  assert.equal(innerId(m.uid, 165535), 65536);
  assert.equal(innerId(m.uid, 165536), undefined);
  const single = planMapping(1001, 1001, undefined, { start: 1, count: 2 });
  assert.equal(single.mode, 'single');
  assert.deepEqual(unshareUserArgs(single), ['--user', '--map-root-user']);
  const host = { uid: 5, gid: 6, user: 'u', subuidText: 'u:100000:10\n', subgidText: 'u:200000:10\n' };
  assert.equal(mappingFor({ ...host, helpers: true }).mode, 'subid');
  assert.equal(mappingFor({ ...host, helpers: false }).mode, 'single', 'no newuidmap: single');
  assert.equal(mappingFor({ ...host, helpers: true, subgidText: '' }).mode, 'single', 'no gid range: single');
});

test('uid_map parsing and user namespace detection', () => {
  assert.equal(isUserNamespaceMap(parseIdMap('         0          0 4294967295\n')), false);
  assert.equal(isUserNamespaceMap(parseIdMap('0 1001 1\n1 100000 65536\n')), true);
  assert.deepEqual(parseIdMap('0 1001 1\n1 100000 65536\n'), [
    { inner: 0, outer: 1001, count: 1 },
    { inner: 1, outer: 100000, count: 65536 },
  ]);
});

test('which commands re-execute, and the command line', () => {
  assert.equal(needsNamespace(['node', 'tsbuild', 'build', '.']), true);
  assert.equal(needsNamespace(['node', 'tsbuild', '-t', 'x', '.']), true, 'the default command is build');
  assert.equal(needsNamespace(['node', 'tsbuild', 'images']), true);
  for (const c of ['parse', 'login', 'logout', '--help', '--version']) assert.equal(needsNamespace(['node', 'tsbuild', c]), false, c);
  assert.equal(needsNamespace(['node', 'tsbuild']), false);
  const m = planMapping(1001, 1001, { start: 100000, count: 65536 }, { start: 100000, count: 65536 });
  const cmd = innerCommand(m, '/usr/bin/node', ['--import', 'tsx'], ['/usr/bin/node', '/x/bin/tsbuild', 'build', '.']);
  assert.deepEqual(cmd.slice(0, 5), ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', '/usr/bin/unshare']);
  assert.deepEqual(cmd.slice(cmd.indexOf('--', 5)), ['--', '/usr/bin/node', '--import', 'tsx', '/x/bin/tsbuild', 'build', '.']);
  assert.ok(!cmd.includes('--mount'), 'no mount namespace of its own');
});

test('the single-mapping hint names the fix, only for unmappable owners', () => {
  const einval = Object.assign(new Error('EINVAL: invalid argument, lchown'), { code: 'EINVAL', syscall: 'lchown' });
  const hint = rootlessHint(einval, { [USERNS_ENV]: 'single', USER: 'alice' });
  assert.match(hint ?? '', /uidmap.*usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice/);
  assert.equal(rootlessHint(einval, { [USERNS_ENV]: 'subid' }), undefined);
  assert.equal(rootlessHint(new Error('ENOENT'), { [USERNS_ENV]: 'single' }), undefined);
  assert.ok(rootlessHint({ message: 'RUN failed', stderrTail: "chown: /x: Invalid argument" }, { [USERNS_ENV]: 'single' }));
});

const USER_NAME = process.env.TSBUILD_ROOTLESS_USER ?? 'tsbuild-ci';
const user = testUser(USER_NAME);

test(`as ${USER_NAME}: import, build (chown, whiteouts, opaque dir, COPY --chown), run`, { skip: typeof user === 'string' ? user : false, timeout: 180_000 }, async () => {
  if (typeof user === 'string') return;
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-rootless-'));
  try {
    openPath(work);
    const root = join(work, 'root');
    const ctx = join(work, 'ctx');
    mkdirSync(root);
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'f.txt'), 'hello\n');
    writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        'FROM busybox:latest',
        'RUN mkdir /d && echo x > /d/f && chown 1000:65534 /d/f && chmod 4755 /d/f && rm /etc/group && rm -rf /home && mkdir /home && echo y > /home/new',
        'COPY --chown=123:456 f.txt /owned/',
        'RUN hostname > /hn && id -u > /uid && ls -ln /owned > /owners',
        'CMD ["sh", "-c", "cat /hn /uid /owners; stat -c \'%n %u:%g %a\' /d/f; ls /home; test -e /etc/group || echo no-group"]',
      ].join('\n') + '\n',
    );
    chownTree(work, user);
    const imported = await runAsUser(user, ['import', '--root', root, '-', 'busybox:latest'], { input: busyboxRootfsTar() });
    assert.equal(imported.code, 0, imported.stderr);
    const built = await runAsUser(user, ['build', '--root', root, '--progress', 'plain', '-t', 'rootless:test', ctx]);
    assert.equal(built.code, 0, `build failed:\n${built.stderr}\n${built.stdout}`);
    const id = await imageIdForRef(root, 'rootless:test');
    assert.ok(id, 'the tag is in repositories.json');

    const { layers } = await readImageLayers(root, id);
    const run1 = viewInside(user, await describeTree(layers[1]!.diffDir));
    const byPath = new Map(run1.map((e) => [e.path, e]));
    assert.deepEqual(
      { uid: byPath.get('d/f')?.uid, gid: byPath.get('d/f')?.gid, mode: byPath.get('d/f')?.mode },
      { uid: 1000, gid: 65534, mode: 0o4755 },
      'chown inside the namespace: 1000:65534 (a subordinate id on the host), setuid kept',
    );
    assert.equal(byPath.get('etc/group')?.type, 'whiteout', 'deleted file: a 0/0 whiteout');
    assert.equal(byPath.get('home')?.xattrs['trusted.overlay.opaque'], '79', 'rm -rf + mkdir: an opaque dir (user.overlay.opaque on disk)');
    const copied = viewInside(user, await describeTree(layers[2]!.diffDir)).find((e) => e.path === 'owned/f.txt');
    assert.deepEqual([copied?.uid, copied?.gid], [123, 456], 'COPY --chown=123:456');

    const ran = await runAsUser(user, ['run', '--root', root, '--network', 'none', 'rootless:test']);
    assert.equal(ran.code, 0, ran.stderr);
    const lines = ran.stdout.trimEnd().split('\n');
    assert.equal(lines[1], '0', 'RUN is uid 0 in its namespace');
    assert.match(ran.stdout, /123 +456 .*f\.txt/);
    assert.match(ran.stdout, /\/d\/f 1000:65534 4755/);
    assert.match(ran.stdout, /^new$/m);
    assert.match(ran.stdout, /^no-group$/m);
    assert.notEqual(lines[0], '', 'a hostname');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test(`as ${USER_NAME} with only uid 0 mapped: a layer owned by 1000 fails with the fix named, nothing kept`, { skip: typeof user === 'string' ? user : false, timeout: 60_000 }, async () => {
  if (typeof user === 'string') return;
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-rootless-'));
  try {
    openPath(work);
    const root = join(work, 'root');
    mkdirSync(root);
    chownTree(work, user);
    // busybox's /home/app is 1000:1000.
    const r = await runAsUser(user, ['import', '--root', root, '-', 'busybox:latest'], { input: busyboxRootfsTar(), env: { TSBUILD_ROOTLESS_MAPPING: 'single' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /EINVAL/);
    assert.match(r.stderr, /only uid\/gid 0 mapped.*uidmap.*usermod --add-subuids 100000-165535 --add-subgids 100000-165535 /);
    assert.deepEqual(readdirSync(join(root, 'image', 'overlay2', 'layerdb', 'sha256')), [], 'no layer registered');
    assert.deepEqual(readdirSync(join(root, 'overlay2')).filter((n) => n !== 'l'), [], 'no layer dir left');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
