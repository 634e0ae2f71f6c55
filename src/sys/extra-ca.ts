/**
 * Extra TLS roots for fetch() without node's start-up cost: bin/tsbuild hands
 * NODE_EXTRA_CA_CERTS on as TSBUILD_EXTRA_CA_CERTS (node parses the former at every start,
 * ≈ 50 ms, though most runs never open a TLS connection). Before the first download, the
 * registry client and ADD URL call installExtraCaCerts(), which gives fetch() a dispatcher
 * trusting node's bundled roots plus that file — what NODE_EXTRA_CA_CERTS would have done.
 */
import { readFile } from 'node:fs/promises';

/** Where node's fetch (undici) and the undici package keep the dispatcher fetch uses. */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

let installing: Promise<void> | undefined;

/** Idempotent; a no-op without TSBUILD_EXTRA_CA_CERTS or when node already loaded NODE_EXTRA_CA_CERTS itself. */
export function installExtraCaCerts(env: NodeJS.ProcessEnv = process.env, warn: (m: string) => void = (m) => void process.stderr.write(`${m}\n`)): Promise<void> {
  const file = env['TSBUILD_EXTRA_CA_CERTS'];
  if (!file || process.env['NODE_EXTRA_CA_CERTS']) return Promise.resolve();
  return (installing ??= (async () => {
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      // As node says for an unreadable NODE_EXTRA_CA_CERTS; the bundled roots still apply.
      warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
      return;
    }
    // Node creates its fetch dispatcher on first use; a data: URL makes it exist without I/O.
    await (await fetch('data:,')).arrayBuffer();
    const current = (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] as { constructor: new (opts: object) => unknown } | undefined;
    if (!current) return;
    const Agent = current.constructor;
    // node:tls loaded here, not at start (it brings net and crypto's TLS parts: ≈ 5 ms).
    const { rootCertificates } = await import('node:tls');
    (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] = new Agent({ connect: { ca: [...rootCertificates, pem] } });
  })());
}
