/** Errors of the registry client; `code` is stable for scripts and tests. */
import { TsbuildError } from '../errors.js';

export type RegistryErrorCode =
  | 'REGISTRY_AUTH' // 401: no or wrong credentials
  | 'REGISTRY_DENIED' // 403, or a token without the scope asked for
  | 'REGISTRY_NOT_FOUND' // 404: repository, manifest or blob unknown
  | 'REGISTRY_UNAVAILABLE' // 429 or 5xx after the retries
  | 'REGISTRY_HTTP' // any other unexpected status
  | 'REGISTRY_NETWORK' // connection refused, reset, TLS failure
  | 'REGISTRY_INSECURE' // plain HTTP refused for a host not allowed to use it
  | 'REGISTRY_DIGEST' // content does not match its digest or diffID
  | 'REGISTRY_TRUNCATED' // fewer (or more) bytes than the descriptor says
  | 'REGISTRY_PLATFORM' // no manifest for the platform asked for
  | 'REGISTRY_MANIFEST' // a manifest or config we cannot use
  | 'REGISTRY_CREDENTIALS'; // config.json or a credential helper failed

export class RegistryError extends TsbuildError {
  /** The HTTP status behind the error, when there was one. */
  readonly status: number | undefined;
  constructor(code: RegistryErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}
