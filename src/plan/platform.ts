/** The build machine's platform and the automatic TARGET… and BUILD… args. */
import type { Platform } from './types.js';

const ARCH: Record<string, Platform> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ia32: { os: 'linux', architecture: '386' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

export function hostPlatform(arch: string = process.arch): Platform {
  return ARCH[arch] ?? { os: 'linux', architecture: arch };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x).join('/');
}

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos']);
const KNOWN_ARCH = new Set(['386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm']);

/** containerd's architecture aliases: x86_64 → amd64, aarch64 → arm64, armhf → arm/v7… */
function normalizeArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  switch (arch) {
    case 'i386':
      return { architecture: '386' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return variant && variant !== 'v1' ? { architecture: 'amd64', variant } : { architecture: 'amd64' };
    case 'aarch64':
    case 'arm64':
      return variant && variant !== 'v8' && variant !== '8' ? { architecture: 'arm64', variant } : { architecture: 'arm64' };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      return { architecture: 'arm', variant: variant ? (variant.startsWith('v') ? variant : `v${variant}`) : 'v7' };
    default:
      return variant ? { architecture: arch, variant } : { architecture: arch };
  }
}

/** `linux/arm64/v8` → Platform, with containerd's parsing rules; a string says why not. */
export function parsePlatform(text: string): Platform | string {
  const parts = text.toLowerCase().split('/');
  const invalid = `"${text}": unknown operating system or architecture: invalid argument`;
  if (parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) return `"${text}": invalid platform specifier`;
  if (parts.length === 1) {
    // One word is an OS or an architecture, the other part taken from this host.
    const word = parts[0]!;
    if (KNOWN_OS.has(word)) return { ...normalizeArch(hostPlatform().architecture, hostPlatform().variant), os: word };
    const arch = normalizeArch(word, undefined);
    if (KNOWN_ARCH.has(arch.architecture)) return { os: hostPlatform().os, ...arch };
    return invalid;
  }
  const os = parts[0] === 'macos' ? 'darwin' : parts[0]!;
  return { os, ...normalizeArch(parts[1]!, parts[2]) };
}

export function platformArgs(build: Platform, target: Platform): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ]);
}

/** Build args Docker accepts without an ARG, kept out of history text. */
export const PROXY_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);
