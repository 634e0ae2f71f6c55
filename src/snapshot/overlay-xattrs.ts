/**
 * overlayfs's own xattrs: `trusted.overlay.*` in the initial user namespace (dockerd's store);
 * inside a user namespace (rootless tsbuild) trusted.* cannot be set, so overlay is mounted with
 * `userxattr` and uses `user.overlay.*` — as rootless dockerd's overlay2 driver does. Every layer
 * dir of a store is written and read under one of the two, chosen by where tsbuild runs.
 */
import { inUserNamespace } from '../sys/userns.js';

export const ROOTFUL_PREFIX = 'trusted.overlay.';
export const ROOTLESS_PREFIX = 'user.overlay.';

export function overlayXattrPrefix(): string {
  return inUserNamespace() ? ROOTLESS_PREFIX : ROOTFUL_PREFIX;
}

/** The opaque-dir marker (value `y`): `.wh..wh..opq` in a layer tar. */
export function opaqueXattr(): string {
  return overlayXattrPrefix() + 'opaque';
}

/** True for overlay bookkeeping xattrs (either namespace), which are never layer content. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith(ROOTFUL_PREFIX) || (inUserNamespace() && name.startsWith(ROOTLESS_PREFIX));
}

/** Extra overlay mount option: `userxattr` inside a user namespace, else none. */
export function overlayXattrOption(): string[] {
  return inUserNamespace() ? ['userxattr'] : [];
}
