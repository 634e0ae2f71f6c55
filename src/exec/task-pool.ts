/**
 * Fire-and-forget tasks with a bound: `submit` waits for a free slot, not for
 * the task. The first failure is thrown by the next submit or drain; `settle`
 * waits for whatever is still running (so nothing writes after an error).
 */
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private error: { e: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async submit(task: () => Promise<void>): Promise<void> {
    this.check();
    while (this.running.size >= this.limit) {
      await Promise.race(this.running);
      this.check();
    }
    const p: Promise<void> = task().then(
      () => {
        this.running.delete(p);
      },
      (e: unknown) => {
        this.running.delete(p);
        this.error ??= { e };
      },
    );
    this.running.add(p);
  }

  /** Waits for every task; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.check();
  }

  /** Waits for every task, ignoring failures. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private check(): void {
    if (this.error !== undefined) throw this.error.e;
  }
}
