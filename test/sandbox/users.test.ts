import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGroup, parsePasswd, resolveChown, resolveUser, type ExecUser } from '../../src/sandbox/users.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1::/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'other:x:1001:1001::/home/other:/bin/sh',
  'toor:x:0:0::/toor:/bin/sh',
  '',
  '  nobody:x:65534:65534::/nonexistent:/bin/false  ',
].join('\n');

const GROUP = [
  'root:x:0:',
  'bin:x:1:root,daemon',
  'daemon:x:2:root',
  'app:x:1000:',
  'staff:x:50:app,other',
  'audio:x:29:app',
  '# comment:x:99:app',
  'nogroup:x:65534:',
].join('\n');

describe('resolveUser (moby/sys/user GetExecUser + dockerd getUser)', () => {
  const ok: [string, ExecUser][] = [
    ['', { uid: 0, gid: 0, additionalGids: [0, 1, 2], home: '/root' }],
    ['root', { uid: 0, gid: 0, additionalGids: [0, 1, 2], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29], home: '/home/app' }],
    ['+1000', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29], home: '/home/app' }],
    ['app:staff', { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' }],
    ['app:50', { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' }],
    ['app:999', { uid: 1000, gid: 999, additionalGids: [999], home: '/home/app' }],
    ['1000:audio', { uid: 1000, gid: 29, additionalGids: [29], home: '/home/app' }],
    ['app:staff:ignored', { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' }],
    [':50', { uid: 0, gid: 50, additionalGids: [50], home: '/root' }],
    ['4242', { uid: 4242, gid: 0, additionalGids: [0], home: '/' }],
    ['4242:4242', { uid: 4242, gid: 4242, additionalGids: [4242], home: '/' }],
    ['4242:staff', { uid: 4242, gid: 50, additionalGids: [50], home: '/' }],
    ['nobody', { uid: 65534, gid: 65534, additionalGids: [65534], home: '/nonexistent' }],
    // A second name for uid 0: its own (no) memberships; HOME from the first uid-0 entry, like runc.
    ['toor', { uid: 0, gid: 0, additionalGids: [0], home: '/root' }],
    ['daemon', { uid: 1, gid: 1, additionalGids: [1, 1], home: '/usr/sbin' }],
  ];
  for (const [spec, want] of ok) {
    test(`USER ${JSON.stringify(spec)}`, () => assert.deepEqual(resolveUser(spec, PASSWD, GROUP), want));
  }

  const errors: [string, string][] = [
    ['xyz', 'unable to find user xyz: no matching entries in passwd file'],
    ['xyz:0', 'unable to find user xyz: no matching entries in passwd file'],
    [' app', 'unable to find user  app: no matching entries in passwd file'],
    ['app:nogrp', 'unable to find group nogrp: no matching entries in group file'],
    ['-1', 'uids and gids must be in range 0-2147483647'],
    ['2147483648', 'uids and gids must be in range 0-2147483647'],
    ['app:-5', 'uids and gids must be in range 0-2147483647'],
    ['99999999999999999999', 'uids and gids must be in range 0-2147483647'],
  ];
  for (const [spec, message] of errors) {
    test(`USER ${JSON.stringify(spec)} fails`, () => assert.throws(() => resolveUser(spec, PASSWD, GROUP), { code: 'USER_LOOKUP', message }));
  }

  test('no /etc/passwd: numeric ids work, names do not', () => {
    assert.deepEqual(resolveUser('', undefined, GROUP), { uid: 0, gid: 0, additionalGids: [0], home: '/' });
    assert.deepEqual(resolveUser('1000', undefined, GROUP), { uid: 1000, gid: 0, additionalGids: [0], home: '/' });
    assert.deepEqual(resolveUser('1000:staff', undefined, GROUP), { uid: 1000, gid: 50, additionalGids: [50], home: '/' });
    assert.throws(() => resolveUser('app', undefined, GROUP), { message: 'unable to find user app: no matching entries in passwd file' });
  });

  test('no /etc/group: no supplementary groups, group names fail', () => {
    assert.deepEqual(resolveUser('app', PASSWD, undefined), { uid: 1000, gid: 1000, additionalGids: [1000], home: '/home/app' });
    assert.deepEqual(resolveUser('app:7', PASSWD, undefined), { uid: 1000, gid: 7, additionalGids: [7], home: '/home/app' });
    assert.throws(() => resolveUser('app:staff', PASSWD, undefined), { message: 'unable to find group staff: no matching entries in group file' });
  });

  test('first matching passwd entry wins; garbage ids read as 0 (Go parseLine)', () => {
    const passwd = 'dup:x:5:5::/a:\ndup:x:6:6::/b:\nweird:x:abc:def::/w:\n';
    assert.deepEqual(resolveUser('dup', passwd, ''), { uid: 5, gid: 5, additionalGids: [5], home: '/a' });
    assert.deepEqual(resolveUser('weird', passwd, ''), { uid: 0, gid: 0, additionalGids: [0], home: '/w' });
  });
});

describe('resolveChown (classic builder parseChownFlag)', () => {
  const ok: [string, { uid: number; gid: number }][] = [
    ['app', { uid: 1000, gid: 1000 }], // the group is looked up by the same *name*
    ['app:staff', { uid: 1000, gid: 50 }],
    ['app:50', { uid: 1000, gid: 50 }],
    ['1000', { uid: 1000, gid: 1000 }],
    ['1000:50', { uid: 1000, gid: 50 }],
    ['4242:4343', { uid: 4242, gid: 4343 }],
    ['root', { uid: 0, gid: 0 }],
    ['0', { uid: 0, gid: 0 }],
  ];
  for (const [spec, want] of ok) {
    test(`--chown=${spec}`, () => assert.deepEqual(resolveChown(spec, PASSWD, GROUP), want));
  }

  const errors: [string, string][] = [
    ['other', "can't find gid for group other: no such group: other"],
    ['nouser', "can't find uid for user nouser: no such user: nouser"],
    ['app:nogrp', "can't find gid for group nogrp: no such group: nogrp"],
    ['a:b:c', 'invalid chown string format: a:b:c'],
    ['-1', "can't find uid for user -1: invalid id -1"],
  ];
  for (const [spec, message] of errors) {
    test(`--chown=${spec} fails`, () => assert.throws(() => resolveChown(spec, PASSWD, GROUP), { code: 'USER_LOOKUP', message }));
  }

  test('numeric ids need no files; names need them', () => {
    assert.deepEqual(resolveChown('10:20', undefined, undefined), { uid: 10, gid: 20 });
    assert.throws(() => resolveChown('app', undefined, GROUP), { message: "can't find uid for user app: open /etc/passwd: no such file or directory" });
    assert.throws(() => resolveChown('app', PASSWD, undefined), { message: "can't find gid for group app: open /etc/group: no such file or directory" });
  });
});

describe('passwd/group parsing', () => {
  test('group comments are skipped, passwd lines are trimmed', () => {
    assert.deepEqual(
      parseGroup(GROUP).map((g) => g.name),
      ['root', 'bin', 'daemon', 'app', 'staff', 'audio', 'nogroup'],
    );
    assert.deepEqual(parseGroup('g:x:7:a,b\n')[0], { name: 'g', gid: 7, members: ['a', 'b'] });
    assert.deepEqual(parsePasswd(PASSWD).at(-1), { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' });
    assert.deepEqual(parsePasswd('short:x:3\r\n')[0], { name: 'short', uid: 3, gid: 0, home: '' });
  });
});
