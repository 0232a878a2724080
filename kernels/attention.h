/* attention.h: the naive reference twin of ewb_sdpa (kernels/attention.c),
 * plain loops with double accumulation, used only by tests.
 * q (…,T,D), k (…,S,D), v (…,S,Dv), mask bool broadcastable to (…,T,S) or
 * NULL; batch dims broadcast (size 1 repeats); any strides; scale > 0.
 * out (…,T,Dv) is overwritten; gq/gk/gv (contiguous, shapes of q/k/v, or
 * NULL) are accumulated into (+=), like a backward. */
#ifndef ECGWB_KERNELS_ATTENTION_H
#define ECGWB_KERNELS_ATTENTION_H
#include "../core/internal.h"
int ewb_sdpa_ref(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, const ewb_tensor *mask, int causal,
                 double scale, ewb_tensor *out);
int ewb_sdpa_ref_backward(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, const ewb_tensor *mask,
                          int causal, double scale, const ewb_tensor *gout, ewb_tensor *gq, ewb_tensor *gk,
                          ewb_tensor *gv);
#endif
