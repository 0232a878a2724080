/* matmul.h: raw matrix products for other kernels (attention, conv helpers)
 * and the naive reference twin used by tests. No autograd here.
 * c (…,M,N) = a (…,M,K) @ b (…,K,N) (+ bias (N)), or += when accumulate;
 * batch dims of a and b may be 1 (broadcast); any strides. */
#ifndef ECGWB_KERNELS_MATMUL_H
#define ECGWB_KERNELS_MATMUL_H
#include "../core/internal.h"
int ewb_mm_raw(const ewb_tensor *a, const ewb_tensor *b, ewb_tensor *c, int accumulate, const ewb_tensor *bias);
/* view of t with its last two dims swapped (no copy, no autograd) */
ewb_tensor *ewb_t_last2(const ewb_tensor *t);
/* dst (gradient of an operand, maybe with broadcast batch dims) += x @ y,
   where x @ y has the nd-dim batch shape `full`; broadcast dims are summed
   through a temporary */
int ewb_mm_accumulate(ewb_tensor *dst, const ewb_tensor *x, const ewb_tensor *y, int nd, const int64_t *full);
/* y (M, N) = x (M, K) · wᵀ (+ bias) for M <= EWB_GEMV_MAX_ROWS without
   oneDNN (see matmul.c); w (N, K) contiguous, x and y rows contiguous with
   row strides xs and ys, bias (N) with stride bs or NULL */
enum { EWB_GEMV_MAX_ROWS = 4 };
int ewb_gemv_rows(const float *x, int64_t xs, int64_t M, int64_t K, const float *w, const float *bias, int64_t bs,
                  float *y, int64_t ys, int64_t N);
int ewb_mm_ref(const ewb_tensor *a, const ewb_tensor *b, ewb_tensor *c, int accumulate, const ewb_tensor *bias);
#endif
