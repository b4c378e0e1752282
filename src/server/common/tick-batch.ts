/**
 * Look-ups asked for during one turn of the event loop share one load, started after all of them were
 * asked (at setImmediate): 50 concurrent requests for the same content cost one query, and every
 * answer was read after its request arrived, as if each had read on its own.
 */
export class TickBatch<Key, Value> {
  private pending: Map<Key, { resolve: (value: Value) => void; reject: (error: unknown) => void }[]> | null = null;

  /** @param load one value per key, in the order of `keys` (distinct) */
  constructor(private readonly load: (keys: Key[]) => Promise<Value[]>) {}

  get(key: Key): Promise<Value> {
    return new Promise<Value>((resolve, reject) => {
      if (this.pending === null) {
        this.pending = new Map();
        setImmediate(() => this.flush());
      }
      const waiting = this.pending.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
    });
  }

  private flush(): void {
    const batch = this.pending!;
    this.pending = null;
    const keys = [...batch.keys()];
    this.load(keys).then(
      (values) => keys.forEach((key, i) => batch.get(key)!.forEach(({ resolve }) => resolve(values[i]))),
      (error: unknown) => batch.forEach((waiting) => waiting.forEach(({ reject }) => reject(error))),
    );
  }
}
