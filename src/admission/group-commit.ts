/**
 * Group commit for a Durable Object's hot-path writes. Each event that writes to SQLite storage
 * commits on its own (one WAL append and one fsync locally, one replicated write in production),
 * and that commit costs more than the whole decision it records. So when calls come close together
 * (within BUSY_GAP_MS of the last one), their writes wait for one turn of the event loop and run
 * together, in one transaction, in one commit; each call answers only after its batch has run, and
 * the output gate holds the answer until the batch is durable. A call that comes alone writes at
 * once: the timer would cost it more than a commit of its own (about 0.1 ms of CPU).
 *
 * Memory is updated when a call decides, the rows when its batch runs: anything that reads the
 * tables these writes touch must `flush()` first. A batch that fails rolls back whole and the
 * object resets (`onFailure`), so memory never keeps a decision its rows lost; every caller whose
 * writes were in it gets the error.
 */
/** Calls this close to the previous one share a batch; slower traffic writes at once. */
export const BUSY_GAP_MS = 2;

export class GroupCommit {
  #writes: Array<() => void> = [];
  #batch: Promise<void> | undefined;
  /** Set when a batch failed: every later wait rejects with it (the object is resetting). */
  #failure: unknown;
  #lastCallAt = Number.NEGATIVE_INFINITY;
  /**
   * Whether the current call's writes wait for a batch (set by `arrive`). One value for the object:
   * a call that awaits (a lease) resumes with the mode of whoever arrived last, which only decides
   * when its rows are written, never whether or in what order.
   */
  #deferring = false;

  constructor(
    private readonly storage: Pick<DurableObjectStorage, "transactionSync">,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  /**
   * A call that may write has arrived: it shares a batch if it came close after the last one,
   * unless `alone` (the caller knows its writes should not wait).
   */
  arrive(now: number, alone = false): void {
    this.#deferring = !alone && now - this.#lastCallAt < BUSY_GAP_MS;
    this.#lastCallAt = now;
  }

  /**
   * Writes now when the current call came alone and no batch is waiting (writes keep their order),
   * else queues the write for the batch. Await `committed()` before answering either way.
   */
  add(write: () => void): void {
    if (!this.#deferring && this.#batch === undefined) {
      write();
      return;
    }
    this.#writes.push(write);
    this.#batch ??= new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        this.#batch = undefined;
        try {
          this.flush();
          if (this.#failure !== undefined) throw this.#failure;
          resolve();
        } catch (err) {
          reject(err);
        }
      }, 0);
    });
  }

  /** Resolves once the writes queued so far have run; undefined when none is waiting. */
  committed(): Promise<void> | undefined {
    return this.#batch;
  }

  /** Runs the queued writes now, in one transaction (before a read of the tables they touch). */
  flush(): void {
    if (this.#writes.length === 0) return;
    const writes = this.#writes;
    this.#writes = [];
    try {
      this.storage.transactionSync(() => {
        for (const write of writes) write();
      });
    } catch (err) {
      this.#failure = err;
      this.onFailure(err);
      throw err;
    }
  }
}
