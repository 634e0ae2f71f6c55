/** Layer tars: write an upper dir as a Docker layer, apply a layer tar to a diff dir, tar-split. */
export { LayerError, type LayerErrorCode } from './errors.js';
export { Crc64, crc64 } from './crc64.js';
export { writeLayer, type WriteLayerOptions, type WriteLayerResult } from './writer.js';
export { applyLayer, splitTar, type ApplyLayerOptions, type ApplyLayerResult } from './reader.js';
export { diffSize } from './size.js';
export {
  assembleTar,
  dirFileContent,
  readTarSplit,
  tarSplitLines,
  TarSplitWriter,
  type FileContent,
  type TarSplitEntry,
} from './tar-split.js';
export { hostNameLookup, nameLookupFrom, NO_NAMES, type NameLookup } from './users.js';
