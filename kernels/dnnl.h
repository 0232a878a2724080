/* dnnl.h: the one place oneDNN is set up for the kernels: a CPU engine and
 * stream, memory descriptors from tensors, and a per-shape primitive cache
 * (creating a primitive JIT-compiles code, so each shape is built once).
 * Only files in kernels/ include this. */
#ifndef ECGWB_KERNELS_DNNL_H
#define ECGWB_KERNELS_DNNL_H
#include "../core/internal.h"
#include <oneapi/dnnl/dnnl.h>

enum { EWB_PRIM_MAX_ARGS = 10 };

typedef struct ewb_prim {
    dnnl_primitive_desc_t pd;  /* kept: backward primitives take it as a hint */
    dnnl_primitive_t prim;
    int is_ref;                /* oneDNN chose its slow reference implementation */
    int nargs;
    int arg_kind[EWB_PRIM_MAX_ARGS];
    dnnl_memory_t mem[EWB_PRIM_MAX_ARGS];
    dnnl_memory_t scratch;
} ewb_prim;

dnnl_engine_t ewb_dnnl_engine(void);
dnnl_stream_t ewb_dnnl_stream(void);
/* turns a oneDNN status into the thread-local error: "op: what failed (status)" */
int ewb_dnnl_check(dnnl_status_t s, const char *op, const char *what);
/* md for a tensor's view (dims = shape, strides = strides) */
dnnl_status_t ewb_md_of(dnnl_memory_desc_t *md, const ewb_tensor *t);
dnnl_status_t ewb_md_dims(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, const int64_t *strides);

/* Cache: look up by key bytes (build the key from the op name, shapes,
   strides and attributes). On a miss, create the primitive descriptor
   yourself and hand it to ewb_prim_put, which owns it from then on. */
ewb_prim *ewb_prim_get(const void *key, size_t keylen);
ewb_prim *ewb_prim_put(const void *key, size_t keylen, dnnl_primitive_desc_t pd, const char *op);
/* run with (arg kind, data pointer) pairs; scratchpad handled here */
int ewb_prim_exec(ewb_prim *p, const char *op, int nargs, const int *kinds, void *const *ptrs);
/* oneDNN attribute with user scratchpad mode (+ optional sum post-op to accumulate) */
dnnl_primitive_attr_t ewb_attr_new(int accumulate);

/* key builder */
typedef struct { char buf[512]; size_t n; } ewb_key;
void ewb_key_add(ewb_key *k, const void *p, size_t n);
void ewb_key_tensor(ewb_key *k, const ewb_tensor *t);
static inline void ewb_key_int(ewb_key *k, int64_t v) { ewb_key_add(k, &v, sizeof v); }
static inline void ewb_key_str(ewb_key *k, const char *s) { ewb_key_add(k, s, __builtin_strlen(s) + 1); }
#endif
