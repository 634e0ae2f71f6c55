/** What an overlay snapshot is made of: the read-only layers under it and the layer it writes. */
export interface RootfsSpec {
  /**
   * The image's layer directories (overlay2 `diff` dirs), absolute, top-most first. Empty for
   * `FROM scratch`: the init layer then is the only lowerdir.
   */
  lowerDirs: string[];
  /** The new layer: after a RUN it holds exactly the command's changes (0/0 char-device whiteouts, opaque xattrs). */
  upperDir: string;
  /** overlay's scratch dir, on the same filesystem as upperDir. */
  workDir: string;
  /**
   * Copy snapshotter (snapshot/copy.ts): the rootfs is this plain directory, already holding the
   * image and the init layer's mount points; sandboxes bind-mount it instead of mounting an
   * overlay, and lowerDirs, upperDir, workDir and the RunSpec's initDir are not used.
   */
  plainDir?: string;
}
