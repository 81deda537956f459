// Hints for the kernels that Swift cannot spell: _mm_prefetch is a macro, so it is not imported.
#pragma once

/// Asks for the cache line at `p` ahead of its use (read, keep in all levels).
static inline __attribute__((always_inline)) void kimi_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
