/**
 * The XBZRLE page cache (QEMU's migration/page_cache.c): old copies of sent pages keyed by
 * RAM address (ram_addr_t: block offset + offset in block), direct-mapped,
 * `xbzrle-cache-size / page size` slots, which must be a power of two.
 */

/** A slot is not replaced by another page while younger than this many sync rounds. */
export const CACHED_PAGE_LIFETIME = 2;

export class XbzrleCache {
  readonly pageSize: number;
  readonly slots: number;
  /** The cached page bytes, slot after slot (may be a view of the VM's linear memory). */
  readonly storage: Uint8Array;
  #addr: Float64Array;
  #age: Float64Array;
  #used: Uint8Array;
  #items = 0;

  /** `size` is QEMU's xbzrle-cache-size in bytes; `storage` (size bytes) defaults to a new buffer. */
  constructor(size: number, options: { pageSize?: number; storage?: Uint8Array } = {}) {
    const pageSize = options.pageSize ?? 4096;
    if (size < pageSize) throw new RangeError(`XBZRLE cache size ${size} is smaller than one target page (${pageSize})`);
    const slots = Math.floor(size / pageSize);
    if ((slots & (slots - 1)) !== 0) {
      throw new RangeError(`XBZRLE cache size ${size} is not a power-of-two number of ${pageSize}-byte pages`);
    }
    if (options.storage !== undefined && options.storage.length < slots * pageSize) {
      throw new RangeError(`XBZRLE cache storage of ${options.storage.length} bytes is smaller than ${slots * pageSize}`);
    }
    this.pageSize = pageSize;
    this.slots = slots;
    this.storage = options.storage ?? new Uint8Array(slots * pageSize);
    this.#addr = new Float64Array(slots).fill(-1);
    this.#age = new Float64Array(slots);
    this.#used = new Uint8Array(slots);
  }

  /** Pages held. */
  get items(): number {
    return this.#items;
  }

  #slot(addr: number): number {
    return Math.floor(addr / this.pageSize) & (this.slots - 1);
  }

  /** Whether `addr`'s page is cached; a hit refreshes the slot's age (cache_is_cached). */
  isCached(addr: number, currentAge: number): boolean {
    const s = this.#slot(addr);
    if (this.#addr[s] !== addr) return false;
    this.#age[s] = currentAge;
    return true;
  }

  /** The cached copy of `addr`'s page (a view, no copy), or undefined. */
  get(addr: number): Uint8Array | undefined {
    const s = this.#slot(addr);
    if (this.#addr[s] !== addr) return undefined;
    return this.storage.subarray(s * this.pageSize, (s + 1) * this.pageSize);
  }

  /** Byte offset of `addr`'s slot in {@link storage} (whether or not it holds `addr`). */
  slotOffset(addr: number): number {
    return this.#slot(addr) * this.pageSize;
  }

  /**
   * Stores a copy of `data` for `addr`. Returns false, storing nothing, when the slot holds
   * another page that is still fresh (cache_insert's rule).
   */
  insert(addr: number, data: Uint8Array, currentAge: number): boolean {
    const s = this.#slot(addr);
    const held = this.#addr[s]!;
    if (this.#used[s] && held !== addr && this.#age[s]! + CACHED_PAGE_LIFETIME > currentAge) return false;
    if (!this.#used[s]) {
      this.#used[s] = 1;
      this.#items++;
    }
    this.storage.set(data.subarray(0, this.pageSize), s * this.pageSize);
    this.#age[s] = currentAge;
    this.#addr[s] = addr;
    return true;
  }
}
