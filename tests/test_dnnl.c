/* test_dnnl.c: the per-shape primitive cache: one primitive per distinct
 * key, reused on the next call; the matmul shapes used for training get a
 * JIT implementation, not oneDNN's slow reference code. */
#include "check.h"
#include "../kernels/dnnl.h"
#include "../kernels/matmul.h"

int main(void) {
    CHECK(ewb_dnnl_engine() != NULL && ewb_dnnl_stream() != NULL, "engine and stream");
    ewb_key k1 = {.n = 0}, k2 = {.n = 0};
    ewb_key_str(&k1, "test");
    ewb_key_int(&k1, 1);
    ewb_key_str(&k2, "test");
    ewb_key_int(&k2, 2);
    CHECK(ewb_prim_get(k1.buf, k1.n) == NULL, "empty cache misses");

    int64_t as[2] = {64, 32}, bs[2] = {32, 16}, cs[2] = {64, 16};
    ewb_tensor *a = T(2, as), *b = T(2, bs), *c = ewb_empty(EWB_DTYPE_F32, 2, cs), *bt0, *bt;
    OK(ewb_mm_raw(a, b, c, 0, NULL));
    /* the key the matmul kernel built is now present: a second call must not grow the cache */
    int64_t bts[2] = {16, 32};
    bt0 = T(2, bts);
    ewb_transpose(bt0, 0, 1, &bt); /* (32,16) with strides (1,32) */
    OK(ewb_mm_raw(a, bt, c, 0, NULL));
    ewb_tensor *r = ewb_empty(EWB_DTYPE_F32, 2, cs);
    ewb_mm_ref(a, bt, r, 0, NULL);
    CHECK(max_rel_err(c, r) < 1e-5, "transposed weights through the cache: %g", max_rel_err(c, r));
    /* build the same primitive by hand to query its implementation */
    dnnl_memory_desc_t amd, bmd, cmd;
    ewb_md_of(&amd, a);
    ewb_md_of(&bmd, bt);
    ewb_md_of(&cmd, c);
    dnnl_matmul_desc_t d;
    dnnl_matmul_desc_init(&d, &amd, &bmd, NULL, &cmd);
    dnnl_primitive_desc_t pd;
    OK(ewb_dnnl_check(dnnl_primitive_desc_create(&pd, &d, NULL, ewb_dnnl_engine(), NULL), "test", "pd"));
    ewb_prim *p = ewb_prim_put(k2.buf, k2.n, pd, "test");
    CHECK(p && !p->is_ref, "transposed-operand matmul runs a JIT kernel");
    CHECK(ewb_prim_get(k2.buf, k2.n) == p, "cache hit returns the same primitive");
    CHECK(ewb_prim_get(k1.buf, k1.n) == NULL, "distinct keys stay distinct");
    /* oneDNN failures become errors with the op name */
    FAILS(ewb_dnnl_check(dnnl_unimplemented, "conv1d", "primitive descriptor"), "conv1d: oneDNN primitive descriptor unimplemented");
    ewb_tensor *list[] = {a, b, c, bt0, bt, r};
    for (int i = 0; i < 6; i++) ewb_tensor_free(list[i]);
    return check_report();
}
