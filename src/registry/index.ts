/**
 * The registry client: pull, push, login. `pullImage` is what FROM uses for a
 * base the store lacks (and `build --pull` to refresh); `pushImage` is behind
 * `tsbuild push` and `build --push`.
 */
export { pull, pullImage, type PullOptions, type PullResult } from './pull.js';
export { pushImage, type PushOptions, type PushResult } from './push.js';
export { login, logout, loginDomain, type LoginOptions } from './login.js';
export { RegistryError, type RegistryErrorCode } from './errors.js';
export { RegistryClient, httpAllowed, registryHost, type ClientOptions, type RetryOptions } from './client.js';
export { lookupCredentials, dockerConfigDir, type Credentials } from './auth.js';
export { plainProgress, silentProgress, ttyProgress, type ProgressSink } from './progress.js';
