/* norm.h: the naive reference twin of ewb_layer_norm (kernels/norm.c),
 * plain double-precision loops without oneDNN, used only by tests.
 * x (..., C); w, b (C) or NULL. The backward recomputes the statistics and
 * ACCUMULATES into dx (shape of x), dw, db (C, contiguous); each may be NULL. */
#ifndef ECGWB_KERNELS_NORM_H
#define ECGWB_KERNELS_NORM_H
#include "../core/internal.h"
int ewb_layer_norm_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **y);
int ewb_layer_norm_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, double eps, ewb_tensor *dx,
                                ewb_tensor *dw, ewb_tensor *db);
#endif
