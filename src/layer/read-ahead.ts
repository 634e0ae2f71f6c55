/**
 * Large files whose reads on the CRC thread (crc64-thread.ts) start before the layer writer gets to
 * them: the thread reads them in order, so without this it would sit idle at every file's end while
 * the main thread hashes that file's last chunks, then wait for the next file to be opened.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, type BigIntStats } from 'node:fs';
import type { CrcThread, ThreadRead } from './crc64-thread.js';

export interface StartedRead {
  fd: number;
  reading: ThreadRead;
}

export class ReadAhead {
  private readonly queue: Array<StartedRead & { key: string }> = [];

  constructor(private readonly thread: CrcThread) {}

  /** A read of a file not started ahead (the caller checked it and keeps `fd` open until `done`). */
  read(fd: number, size: number): ThreadRead {
    return this.thread.read(fd, size);
  }

  /** How many reads are started and not yet taken. */
  get started(): number {
    return this.queue.length;
  }

  /** Starts reading `path`, when it opens as the file `st` describes (else the writer finds out itself). */
  start(path: Buffer, st: BigIntStats): void {
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch {
      return;
    }
    const fst = fstatSync(fd, { bigint: true });
    if (fst.ino !== st.ino || fst.dev !== st.dev) {
      closeSync(fd);
      return;
    }
    this.queue.push({ key: path.toString('latin1'), fd, reading: this.thread.read(fd, Number(st.size)) });
  }

  /**
   * The read started for `path`; the caller closes its fd once `reading.done` settles. Reads started
   * before it and not taken are stopped first (the thread serves them in order), and all of them
   * when `path` has none.
   */
  async take(path: Buffer): Promise<StartedRead | undefined> {
    const key = path.toString('latin1');
    if (!this.queue.some((r) => r.key === key)) {
      await this.stopAll();
      return undefined;
    }
    for (let r = this.queue.shift(); r !== undefined; r = this.queue.shift()) {
      if (r.key === key) return r;
      await stop(r);
    }
    return undefined;
  }

  /** Stops every read not taken and closes its file. */
  async stopAll(): Promise<void> {
    for (let r = this.queue.shift(); r !== undefined; r = this.queue.shift()) await stop(r);
  }
}

async function stop(r: StartedRead): Promise<void> {
  r.reading.cancel();
  await r.reading.done.catch(() => undefined);
  closeSync(r.fd);
}
