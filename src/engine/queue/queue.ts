/**
 * The job queue seam. Embedded mode runs an in-process queue; cluster mode swaps in a
 * queue on an existing engine (BullMQ) behind the same interface.
 *
 * Contract (checked by test/engine/queue.contract.test.ts for every implementation):
 * - a job id enqueued while it is waiting or running is not run twice at the same time;
 * - at most `concurrency` handlers run at once; jobs start in enqueue order;
 * - jobs of the same group (pipeline) never run concurrently: a later one waits;
 * - `close()` stops taking jobs and resolves once running handlers have returned.
 */
export interface QueueItem {
  jobId: string;
  /** Jobs sharing a group run one at a time (the pipeline id). */
  group: string | null;
}

export interface JobQueue {
  enqueue(item: QueueItem): Promise<void>;
  process(handler: (item: QueueItem) => Promise<void>): void;
  stats(): { waiting: number; active: number };
  close(): Promise<void>;
}

export class MemoryQueue implements JobQueue {
  private waiting: QueueItem[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly busyGroups = new Set<string>();
  private handler: ((item: QueueItem) => Promise<void>) | null = null;
  private closed = false;

  constructor(private readonly concurrency: number) {}

  async enqueue(item: QueueItem): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
    if (this.running.has(item.jobId) || this.waiting.some((w) => w.jobId === item.jobId)) return;
    this.waiting.push(item);
    this.pump();
  }

  process(handler: (item: QueueItem) => Promise<void>): void {
    this.handler = handler;
    this.pump();
  }

  stats() {
    return { waiting: this.waiting.length, active: this.running.size };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting = [];
    await Promise.allSettled([...this.running.values()]);
  }

  private pump(): void {
    const handler = this.handler;
    if (!handler || this.closed) return;
    while (this.running.size < this.concurrency) {
      const idx = this.waiting.findIndex((w) => !w.group || !this.busyGroups.has(w.group));
      if (idx < 0) return;
      const [item] = this.waiting.splice(idx, 1) as [QueueItem];
      if (item.group) this.busyGroups.add(item.group);
      const p = Promise.resolve()
        .then(() => handler(item))
        .catch(() => undefined)
        .finally(() => {
          this.running.delete(item.jobId);
          if (item.group) this.busyGroups.delete(item.group);
          this.pump();
        });
      this.running.set(item.jobId, p);
    }
  }
}
