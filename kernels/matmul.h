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
int ewb_mm_ref(const ewb_tensor *a, const ewb_tensor *b, ewb_tensor *c, int accumulate, const ewb_tensor *bias);
#endif
