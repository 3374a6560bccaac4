/**
 * Group commit for a Durable Object's hot-path writes. Each event that writes to SQLite storage
 * commits on its own (one WAL append and one fsync locally, one replicated write in production),
 * and that commit costs more than the whole decision it records. So the writes of concurrent calls
 * wait here for one turn of the event loop and run together, in one transaction, in one commit;
 * each call answers only after its batch has run, and the output gate holds the answer until the
 * batch is durable. A call alone pays one timer; calls that arrive together share a commit.
 *
 * Memory is updated when a call decides, the rows when its batch runs: anything that reads the
 * tables these writes touch must `flush()` first. A batch that fails rolls back whole and the
 * object resets (`onFailure`), so memory never keeps a decision its rows lost; every caller whose
 * writes were in it gets the error.
 */
export class GroupCommit {
  #writes: Array<() => void> = [];
  #batch: Promise<void> | undefined;
  /** Set when a batch failed: every later wait rejects with it (the object is resetting). */
  #failure: unknown;

  constructor(
    private readonly storage: Pick<DurableObjectStorage, "transactionSync">,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  /** Queues a write for the current batch. Await `committed()` before answering. */
  add(write: () => void): void {
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
