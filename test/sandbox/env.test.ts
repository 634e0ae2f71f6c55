import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HOSTS, DEFAULT_PATH_ENV, dockerRunEnv, hostnameFile, hostsFile, replaceOrAppendEnv } from '../../src/sandbox/env.js';

describe('replaceOrAppendEnv (moby ReplaceOrAppendEnvValues)', () => {
  test('replace in place, append new, bare name unsets', () => {
    assert.deepEqual(replaceOrAppendEnv(['PATH=/x', 'HOSTNAME=h', 'K=1'], ['PATH=/y', 'A=1', 'A=2', 'HOSTNAME', 'NOPE']), ['PATH=/y', 'K=1', 'A=1', 'A=2']);
  });
});

describe('dockerRunEnv', () => {
  test('defaults: PATH, HOSTNAME, then HOME from passwd', () => {
    assert.deepEqual(dockerRunEnv([], { hostname: 'abc123', home: '/root' }), [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=abc123', 'HOME=/root']);
  });
  test('the config env overrides; duplicates keep the last; a set HOME stays', () => {
    assert.deepEqual(dockerRunEnv(['PATH=/bin', 'X=1', 'HOME=/h', 'X=2'], { hostname: 'h', home: '/root' }), [
      'PATH=/bin',
      'HOSTNAME=h',
      'HOME=/h',
      'X=2',
    ]);
  });
  test('an empty HOME is replaced (runc)', () => {
    assert.deepEqual(dockerRunEnv(['HOME='], { hostname: 'h', home: '/home/app' }), [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=h', 'HOME=/home/app']);
  });
});

describe('generated /etc files', () => {
  test('hosts per network mode', () => {
    assert.equal(DEFAULT_HOSTS.split('\n')[0], '127.0.0.1\tlocalhost');
    assert.equal(DEFAULT_HOSTS.split('\n')[1], '::1\tlocalhost ip6-localhost ip6-loopback');
    assert.equal(hostsFile('default', 'abc', undefined), DEFAULT_HOSTS + '127.0.1.1\tabc\n');
    assert.equal(hostsFile('default', 'a.b.c', undefined), DEFAULT_HOSTS + '127.0.1.1\ta.b.c a\n');
    assert.equal(hostsFile('none', 'abc', undefined), DEFAULT_HOSTS);
    assert.equal(hostsFile('host', 'abc', '1.2.3.4 x\n'), '1.2.3.4 x\n');
    assert.equal(hostnameFile('abc'), 'abc\n');
  });
});
