// Batches on AMX (prefill, the encoders, the DiT; f16/bf16 weights too, for the vocoder): q8/q4 `_r8`
// weights (formats/KAF.md) are widened to bf16 a panel of 32 rows at a
// time, the activations are rounded to bf16 once per call, and TDPBF16PS accumulates 16 tokens ×
// 16 rows × 32 columns per instruction in f32 tiles. Integer tiles (TDPBSSD) would need a float
// step per 32-column group (the weights' scales are per group), which would cost more than the
// multiply; bf16 tiles accumulate over the whole row and need none. C, not Swift: Swift cannot
// import the tile intrinsics (their register operands are immediates in C macros).
// The scalar twin is matmulAMX_ref (runtime/Kernels/MatMulAMX.swift).
#include "kimi_amx.h"

#include <errno.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static void configure_tiles(void);

int kimi_amx_enable(void) {
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long granted = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &granted) != 0 || !(granted & (1UL << XFEATURE_XTILEDATA)))
        return 0;
    // Some VMs list AMX and grant the state, yet the tile instructions fault (seen with llama.cpp on
    // an earlier host): run one tile step in a child first, so a fault ends the child, not us.
    pid_t child = fork();
    if (child < 0) return 0;
    if (child == 0) {
        float c[256] __attribute__((aligned(64)));
        configure_tiles();
        _tile_zero(0);
        _tile_stored(0, c, 64);
        _tile_release();
        _exit(c[17] == 0 ? 0 : 1);
    }
    int status = 0;
    pid_t r;
    do r = waitpid(child, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r != child) return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

// Tiles 0–3: C (16 tokens × 16 rows f32); 4–5: A (16 tokens × 32 columns bf16); 6–7: B (16 column
// pairs × 16 rows × 2 bf16). Every tile is 16 rows of 64 bytes.
static void configure_tiles(void) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
    }
    _tile_loadconfig(&c);
}

// A is stored tile by tile (16 tokens × 32 columns = 1 KiB each, token blocks outer), so a tile
// load reads one contiguous KiB: token i's first 32 columns start here, the next 32 one KiB on.
static inline uint16_t *token_start(uint16_t *a, int i, int k) { return a + (size_t)(i / 16) * (k / 32) * 512 + (i % 16) * 32; }

void kimi_amx_bf16_rows(const float *x, size_t ldx, int t0, int t, int k, uint16_t *a) {
    for (int i = t0; i < t0 + t; i++) {
        const float *xr = x + (size_t)(i - t0) * ldx;
        uint16_t *ar = token_start(a, i, k);
        for (int j = 0; j < k; j += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + j + 16), _mm512_loadu_ps(xr + j));
            _mm512_storeu_si512(ar + (size_t)(j / 32) * 512, (__m512i)v);
        }
    }
}

// 32 int8 weights of one `_r8` chunk (8 rows × 4 columns, row-major in 4-byte runs) times the
// rows' scales → bf16 pairs in the B layout: column pair `p` gets rows 0–7's (k, k+1) at
// dst + p*32 (elements), pair p+1 their (k+2, k+3).
static inline void widen_chunk(__m256i q, __m512 s_lo, __m512 s_hi, uint16_t *dst) {
    __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), s_lo);
    __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), s_hi);
    // dword 2r holds row r's (k, k+1), dword 2r+1 its (k+2, k+3)
    __m512i b = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    b = _mm512_permutexvar_epi32(split, b);
    _mm256_storeu_si256((__m256i *)dst, _mm512_castsi512_si256(b));
    _mm256_storeu_si256((__m256i *)(dst + 32), _mm512_extracti64x4_epi64(b, 1));
}

// Row group `rg` (8 rows) of the matrix → half `half` (rows 0–7 or 8–15) of the 16-row B block
// at `block` (k/2 pairs × 32 bf16).
static void widen_row_group(const uint8_t *rg, int q4, int g, int k, uint16_t *block, int half) {
    const int qbytes = q4 ? g / 2 : g, tile_bytes = 8 * (2 + qbytes);
    const __m512i lo_idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i hi_idx = _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
    uint16_t *out = block + 16 * half;
    for (int gi = 0; gi < k / g; gi++) {
        const uint8_t *tile = rg + (size_t)gi * tile_bytes;
        __m512 s = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tile)));
        __m512 s_lo = _mm512_permutexvar_ps(lo_idx, s), s_hi = _mm512_permutexvar_ps(hi_idx, s);
        const uint8_t *qs = tile + 16;
        uint16_t *o = out + (size_t)(gi * g / 2) * 32;
        if (q4) {
            const __m256i m = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
            for (int c = 0; c < g / 8; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                __m256i lo = _mm256_sub_epi8(_mm256_and_si256(v, m), eight);
                __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m), eight);
                widen_chunk(lo, s_lo, s_hi, o + (size_t)(2 * c) * 32);
                widen_chunk(hi, s_lo, s_hi, o + (size_t)(g / 4 + 2 * c) * 32);
            }
        } else {
            for (int c = 0; c < g / 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                widen_chunk(v, s_lo, s_hi, o + (size_t)(2 * c) * 32);
            }
        }
    }
}

// Stores C tile `n` for tokens [t0, t0+16) and 16 rows at y, or the part of it that exists.
#define STORE_TILE(n, t0, col, rows_here)                                                          \
    do {                                                                                           \
        float *dst = y + (size_t)(t0) * ldy + (col);                                               \
        int nt = t - (t0) < 16 ? t - (t0) : 16, nr = (rows_here) < 16 ? (rows_here) : 16;          \
        if (nt == 16 && nr == 16) {                                                                \
            _tile_stored(n, dst, ldy * 4);                                                         \
        } else if (nt > 0 && nr > 0) {                                                             \
            _tile_stored(n, tmp, 64);                                                              \
            for (int i = 0; i < nt; i++) memcpy(dst + (size_t)i * ldy, tmp + 16 * i, 4 * nr);      \
        }                                                                                          \
    } while (0)

// C = A·panelᵀ for the 32 rows (or fewer, zero-padded) of `panel`, tokens [0, tpad) of A, stored
// to y at column r0 (`rows` of them exist).
static void multiply_panel(const uint16_t *a, int t, int tpad, const uint16_t *panel, int k, float *y, size_t ldy,
                           int r0, int rows) {
    float tmp[256] __attribute__((aligned(64)));
    const size_t block = (size_t)k * 16;    // bf16 per 16-row B block
    const size_t a_block = (size_t)k * 16;  // bf16 per 16-token block of A
    const uint16_t *b0 = panel, *b1 = panel + block;
    for (int t0 = 0; t0 < tpad; t0 += 32) {
        const uint16_t *a0 = a + (size_t)(t0 / 16) * a_block, *a1 = a0 + a_block;
        if (t0 + 16 < tpad) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int kk = 0; kk < k; kk += 32) {
                _tile_loadd(4, a0 + kk * 16, 64);
                _tile_loadd(5, a1 + kk * 16, 64);
                _tile_loadd(6, b0 + kk * 16, 64);
                _tile_loadd(7, b1 + kk * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            STORE_TILE(0, t0, r0, rows);
            STORE_TILE(1, t0, r0 + 16, rows - 16);
            STORE_TILE(2, t0 + 16, r0, rows);
            STORE_TILE(3, t0 + 16, r0 + 16, rows - 16);
        } else {  // a last block of 16 tokens: the same loop on two tiles (tile numbers are immediates)
            _tile_zero(0);
            _tile_zero(1);
            for (int kk = 0; kk < k; kk += 32) {
                _tile_loadd(4, a0 + kk * 16, 64);
                _tile_loadd(6, b0 + kk * 16, 64);
                _tile_loadd(7, b1 + kk * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
            }
            STORE_TILE(0, t0, r0, rows);
            STORE_TILE(1, t0, r0 + 16, rows - 16);
        }
    }
}

void kimi_amx_matmul_r8(const void *w, size_t group_bytes, int q4, int g, int k, int group_begin,
                        int group_end, const uint16_t *a, int t, int tpad, float *y, size_t ldy,
                        uint16_t *panel) {
    const size_t block = (size_t)k * 16;
    configure_tiles();
    for (int i0 = group_begin; i0 < group_end; i0 += 4) {
        int groups = group_end - i0 < 4 ? group_end - i0 : 4;
        if (groups < 4) memset(panel, 0, 2 * 2 * block);
        for (int j = 0; j < groups; j++)
            widen_row_group((const uint8_t *)w + (size_t)(i0 + j) * group_bytes, q4, g, k, panel + (j / 2) * block, j % 2);
        multiply_panel(a, t, tpad, panel, k, y, ldy, 8 * i0, 8 * groups);
    }
    _tile_release();
}

// One f16 or bf16 row (k values) → column `n` (0–15) of the 16-row B block at `block`.
static void widen_float_row(const uint16_t *row, int bf16, int k, uint16_t *block, int n) {
    uint32_t pairs[16] __attribute__((aligned(64)));
    uint32_t *out = (uint32_t *)block + n;
    for (int j = 0; j < k; j += 32) {
        __m512i v;
        if (bf16) {
            v = _mm512_loadu_si512(row + j);
        } else {
            __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + j)));
            __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + j + 16)));
            v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        }
        _mm512_store_si512(pairs, v);
        uint32_t *o = out + (size_t)(j / 2) * 16;  // pair p = j/2 + i holds 16 dwords, one per row
        for (int i = 0; i < 16; i++) o[i * 16] = pairs[i];
    }
}

void kimi_amx_matmul_f16(const void *w, size_t row_bytes, int bf16, int k, int row_begin, int row_end,
                         const uint16_t *a, int t, int tpad, float *y, size_t ldy, uint16_t *panel) {
    const size_t block = (size_t)k * 16;
    configure_tiles();
    for (int r0 = row_begin; r0 < row_end; r0 += 32) {
        int rows = row_end - r0 < 32 ? row_end - r0 : 32;
        if (rows < 32) memset(panel, 0, 2 * 2 * block);
        for (int j = 0; j < rows; j++)
            widen_float_row((const uint16_t *)((const uint8_t *)w + (size_t)(r0 + j) * row_bytes), bf16, k,
                            panel + (j / 16) * block, j % 16);
        multiply_panel(a, t, tpad, panel, k, y, ldy, r0, rows);
    }
    _tile_release();
}
