/** Errors raised while writing, reading or reassembling layer tars. */
import { TsbuildError } from '../errors.js';

export type LayerErrorCode =
  | 'LAYER' // generic I/O or tool failure
  | 'LAYER_UNSAFE' // an entry would escape the target directory
  | 'LAYER_CORRUPT' // malformed, truncated or unsupported tar / tar-split data
  | 'LAYER_DIFFID' // the tar's digest is not the expected diffID
  | 'LAYER_CHECKSUM' // tar-split CRC mismatch while reassembling
  | 'LAYER_TOOL'; // a required host tool (getfattr, setfattr, mknod) is missing

/**
 * A layer error; `entry` is the tar entry name (or relative path) it concerns, shown in the message
 * as `<entry>: <message>`. Entry names are reported as UTF-8 with invalid bytes replaced.
 */
export class LayerError extends TsbuildError {
  readonly entry: string | undefined;
  constructor(message: string, opts?: { entry?: string; code?: LayerErrorCode; cause?: unknown }) {
    const entry = opts?.entry;
    super(opts?.code ?? 'LAYER', entry === undefined ? message : `${JSON.stringify(entry)}: ${message}`, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.entry = entry;
  }
}
