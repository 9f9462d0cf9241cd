#ifndef VESSEL_PREFETCH_H
#define VESSEL_PREFETCH_H

/// A hint that the cache line at `address` will be read soon (`prefetcht0` on x86-64). Swift
/// cannot call `_mm_prefetch` (a macro whose hint must be a constant), so the kernels import this.
static inline __attribute__((always_inline)) void vessel_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
