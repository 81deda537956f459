// AMX (Advanced Matrix Extensions) bf16 tiles for batches on `_r8` weights and on f16/bf16 weights; see amx.c.
#ifndef KIMI_AMX_H
#define KIMI_AMX_H
#include <stddef.h>
#include <stdint.h>

/// Asks the kernel for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM) and runs one tile
/// step in a child process; 1 if the state was granted and the step ran.
int kimi_amx_enable(void);

/// Tokens t0..<t0+t of A (bf16, round to nearest even) from the t rows of X at x (f32, row stride
/// ldx), k a multiple of 32. A is laid out in tiles: token i, column j at
/// ((i/16)·(k/32) + j/32)·512 + (i%16)·32 + j%32.
void kimi_amx_bf16_rows(const float *x, size_t ldx, int t0, int t, int k, uint16_t *a);

/// Y[t*ldy + r] = sum_k A[t*K + k] * W[r, k] for t < T and rows r of the row groups
/// [group_begin, group_end) (8 rows each) of a q8/q4 `_r8` matrix at `w` (row-group stride
/// group_bytes, group size g, k columns). A holds tpad tokens (a multiple of 16); the ones past T may hold anything: their
/// output rows are computed apart from the others and not stored.
/// `panel`: 32 * k bf16 of scratch (64-byte aligned is fastest).
void kimi_amx_matmul_r8(const void *w, size_t group_bytes, int q4, int g, int k, int group_begin,
                        int group_end, const uint16_t *a, int t, int tpad, float *y, size_t ldy,
                        uint16_t *panel);

/// The same for f16 (bf16 = 0) or bf16 (bf16 = 1) weights, row-major with row stride row_bytes,
/// rows [row_begin, row_end) (any count): each row rounded to bf16 into the panel.
void kimi_amx_matmul_f16(const void *w, size_t row_bytes, int bf16, int k, int row_begin, int row_end,
                         const uint16_t *a, int t, int tpad, float *y, size_t ldy, uint16_t *panel);

#endif
