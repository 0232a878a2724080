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

    /* strided copy_ and add_ over many rows (the parallel row path), checked
       element by element against ewb_tensor_get: a permuted 4-d source into
       a contiguous dst, then added into a narrowed (offset, strided) dst */
    {
        int64_t s4[4] = {3, 40, 6, 70}, p4[4] = {3, 6, 40, 70}, big4[4] = {3, 6, 40, 90};
        int perm[4] = {0, 2, 1, 3};
        ewb_tensor *src4, *srcp, *c4, *base, *nar;
        OK(ewb_randn(&src4, 4, s4));
        OK(ewb_permute(src4, perm, &srcp));        /* (3,6,40,70) strided view */
        OK(ewb_tensor_new(&c4, EWB_DTYPE_F32, 4, p4));
        OK(ewb_copy_(c4, srcp));
        OK(ewb_randn(&base, 4, big4));
        OK(ewb_narrow(base, 3, 10, 70, &nar));     /* (3,6,40,70) at offset 10, row stride 90 */
        ewb_tensor *before;
        OK(ewb_clone(base, &before));
        OK(ewb_add_(nar, srcp, 0.5));
        int bad_copy = 0, bad_add = 0;
        int64_t ix[4], jx[4];
        double a, b, c0;
        for (ix[0] = 0; ix[0] < 3; ix[0]++)
            for (ix[1] = 0; ix[1] < 6; ix[1]++)
                for (ix[2] = 0; ix[2] < 40; ix[2]++)
                    for (ix[3] = 0; ix[3] < 90; ix[3]++) {
                        int in = ix[3] >= 10 && ix[3] < 80;
                        jx[0] = ix[0]; jx[1] = ix[2]; jx[2] = ix[1]; jx[3] = ix[3] - 10; /* src4 index */
                        ewb_tensor_get(base, ix, &b);
                        ewb_tensor_get(before, ix, &c0);
                        if (in) {
                            ewb_tensor_get(src4, jx, &a);
                            int64_t kx[4] = {ix[0], ix[1], ix[2], ix[3] - 10};
                            double cv;
                            ewb_tensor_get(c4, kx, &cv);
                            bad_copy += cv != a;
                            bad_add += fabs(b - (c0 + 0.5 * a)) > 1e-6;
                        } else {
                            bad_add += b != c0; /* outside the narrowed view: untouched */
                        }
                    }
        CHECK(bad_copy == 0, "strided copy_: %d wrong elements", bad_copy);
        CHECK(bad_add == 0, "strided add_ into a narrowed dst: %d wrong elements", bad_add);
        /* an expanded (stride-0) dst sums every repeated source element */
        int64_t one[2] = {1, 300}, rep[2] = {4000, 300};
        ewb_tensor *acc, *accx, *ones;
        OK(ewb_tensor_new(&acc, EWB_DTYPE_F32, 2, one));
        OK(ewb_expand(acc, 2, rep, &accx));
        OK(ewb_full(&ones, EWB_DTYPE_F32, 2, rep, 1.0));
        OK(ewb_add_(accx, ones, 1.0));
        int64_t k0[2] = {0, 0}, k1[2] = {0, 299};
        ewb_tensor_get(acc, k0, &a);
        ewb_tensor_get(acc, k1, &b);
        CHECK(a == 4000 && b == 4000, "add_ into an expanded dst sums repeats: %g %g", a, b);
        ewb_tensor *l4[] = {src4, srcp, c4, base, nar, before, acc, accx, ones};
        for (size_t i = 0; i < sizeof l4 / sizeof *l4; i++) ewb_tensor_free(l4[i]);
    }

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
