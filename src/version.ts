/** Written as `docker_version` in the image configs tsbuild creates, so `docker inspect` shows who made them. */
export const TSBUILD_VERSION = 'tsbuild-0.1.0';
