/* test_tensor.c: construction, dtypes, element access, in-place helpers,
 * broadcasting copies, alignment and memory accounting. */
#include "check.h"

int main(void) {
    int64_t s[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    ewb_tensor *t, *z, *o = NULL;
    OK(ewb_tensor_from_data(&t, EWB_DTYPE_F32, 2, s, data));
    CHECK(((uintptr_t)ewb_tensor_data(t) & 63) == 0, "storage is 64-byte aligned");
    double v;
    int64_t i12[2] = {1, 2}, ineg[2] = {-1, -3}, ibad[2] = {2, 0};
    OK(ewb_tensor_get(t, i12, &v));
    CHECK(v == 6, "get(1,2) = %g", v);
    OK(ewb_tensor_get(t, ineg, &v));
    CHECK(v == 4, "negative indices count from the end: %g", v);
    FAILS(ewb_tensor_get(t, ibad, &v), "get: index 2 out of range for dim 0 of f32[2,3]");
    FAILS(ewb_tensor_item(t, &v), "item: tensor must have exactly one element, got f32[2,3]");
    char buf[64];
    ewb_tensor_describe(t, buf, sizeof buf);
    CHECK(!strcmp(buf, "f32[2,3]"), "describe: %s", buf);

    /* dtype conversion through copy_, with broadcasting of a row */
    int64_t row[1] = {3};
    ewb_tensor *r, *ti;
    OK(ewb_full(&r, EWB_DTYPE_F32, 1, row, 2.5));
    OK(ewb_tensor_new(&ti, EWB_DTYPE_I64, 2, s));
    OK(ewb_copy_(ti, r));
    OK(ewb_tensor_get(ti, i12, &v));
    CHECK(v == 2, "f32 2.5 -> i64 truncates to 2: %g", v);
    FAILS(ewb_copy_(r, t), "copy_: cannot broadcast f32[2,3] to f32[3]");
    ewb_tensor *b;
    OK(ewb_tensor_new(&b, EWB_DTYPE_BOOL, 2, s));
    OK(ewb_copy_(b, t));
    OK(ewb_tensor_get(b, i12, &v));
    CHECK(v == 1 && ewb_dtype_size(EWB_DTYPE_BOOL) == 1, "bool conversion");

    /* add_ with broadcasting and scaling; fill_; scale_ */
    OK(ewb_add_(t, r, -2.0)); /* t -= 5 */
    OK(ewb_tensor_get(t, i12, &v));
    CHECK(v == 1, "add_ alpha: %g", v);
    OK(ewb_fill_(t, 3));
    OK(ewb_scale_(t, 0.5));
    OK(ewb_tensor_get(t, i12, &v));
    CHECK(v == 1.5, "fill_ then scale_: %g", v);
    FAILS(ewb_add_(ti, r, 1), "add_: expected an f32 tensor, got i64[2,3]");

    /* copy into a strided (transposed) destination */
    ewb_tensor *tt;
    OK(ewb_tensor_from_data(&z, EWB_DTYPE_F32, 2, s, data));
    int64_t s2[2] = {3, 2};
    ewb_tensor *dst;
    OK(ewb_tensor_new(&dst, EWB_DTYPE_F32, 2, s2));
    OK(ewb_transpose(dst, 0, 1, &tt)); /* (2,3) view of a (3,2) */
    OK(ewb_copy_(tt, z));
    int64_t j[2] = {2, 1};
    OK(ewb_tensor_get(dst, j, &v));
    CHECK(v == 6, "strided copy: dst[2][1] = %g", v);

    /* arange and full */
    ewb_tensor *ar;
    OK(ewb_arange(&ar, EWB_DTYPE_I64, 0, 10, 3));
    CHECK(ewb_tensor_numel(ar) == 4, "arange(0,10,3) has 4 elements");
    int64_t i3[1] = {3};
    ewb_tensor_get(ar, i3, &v);
    CHECK(v == 9, "arange last = %g", v);
    FAILS(ewb_arange(&o, EWB_DTYPE_F32, 0, 1, 0), "step must be non-zero");

    /* shape validation */
    int64_t neg[2] = {2, -1};
    FAILS(ewb_tensor_new(&o, EWB_DTYPE_F32, 2, neg), "negative size -1 in dim 1");
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    FAILS(ewb_tensor_new(&o, EWB_DTYPE_F32, 9, nine), "tensors have 0..8 dims");
    FAILS(ewb_tensor_new(&o, 7, 2, s), "unknown dtype 7");

    /* memory accounting: current and peak */
    ewb_tensor *list[] = {t, r, ti, b, z, dst, tt, ar};
    for (size_t i = 0; i < 8; i++) ewb_tensor_free(list[i]);
    CHECK(ewb_mem_current() == 0, "all freed (%lld live)", (long long)ewb_mem_current());
    ewb_mem_reset_peak();
    int64_t big[1] = {1000000};
    ewb_tensor *x;
    OK(ewb_tensor_new(&x, EWB_DTYPE_F32, 1, big));
    int64_t cur = ewb_mem_current();
    CHECK(cur >= 4000000 && cur < 4000000 + 64, "current counts the allocation: %lld", (long long)cur);
    ewb_tensor_free(x);
    CHECK(ewb_mem_current() == 0 && ewb_mem_peak() >= 4000000, "peak remembers: %lld", (long long)ewb_mem_peak());
    /* pressure: crossing the threshold is reported once */
    ewb_mem_set_threshold(1 << 20);
    while (ewb_mem_pressure()) {}
    OK(ewb_tensor_new(&x, EWB_DTYPE_F32, 1, big));
    CHECK(ewb_mem_pressure() == 1 && ewb_mem_pressure() == 0, "pressure reported once per threshold");
    ewb_tensor_free(x);
    return check_report();
}
