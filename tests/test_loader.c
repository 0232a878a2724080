/* test_loader.c: core/loader.c from C. On a small dataset whose samples
 * encode (record, lead, time): every record exactly once per epoch, the
 * batch contents and fields match the records named by `index`, the same
 * order at 1 and 2 workers and any prefetch depth, a different order per
 * epoch, the split filter and drop_last, prefetch never above its depth
 * (and reaching it when the caller is slow), closing mid-epoch while
 * workers are blocked on a full prefetch window, a worker's read error
 * reported by next(), clear errors at creation, and the libuv hookup:
 * uv_async_send from the workers wakes a loop that takes batches without
 * blocking. Direct chunk reads (decompression outside the HDF5 lock, see
 * core/dataset_internal.h): batches bit-identical to the H5Dread path
 * (ECGWB_H5_DIRECT=0) on deflated f32 and int16 files, with and without the
 * shuffle filter, at 1 to 3 workers. The augmentations are tested in
 * tests/test_loader.lua. */
#include "check.h"
#include "../core/dataset_internal.h"
#include <hdf5.h>
#include <unistd.h>
#include <uv.h>

enum { N = 37, LEADS = 3, SAMPLES = 64 };
static char path[256];

static float val(int64_t r, int64_t l, int64_t t) { return (float)(r * 1000 + l * 100 + t); }

static void make_dataset(void) {
    const char *names[2] = {"even", "fifth"};
    ewb_dataset_spec sp = {.fs = 100, .leads = LEADS, .samples = SAMPLES, .nlabels = 2, .label_names = names, .compression = 1};
    ewb_dataset *ds = NULL;
    OK(ewb_dataset_create(&ds, path, &sp));
    int64_t s3[3] = {N, LEADS, SAMPLES}, s2[2] = {N, 2}, n = N;
    ewb_tensor *x, *y, *age, *sex, *pid, *split;
    ewb_tensor_new(&x, EWB_DTYPE_F32, 3, s3);
    ewb_tensor_new(&y, EWB_DTYPE_I32, 2, s2);
    ewb_tensor_new(&age, EWB_DTYPE_F32, 1, &n);
    ewb_tensor_new(&sex, EWB_DTYPE_I32, 1, &n);
    ewb_tensor_new(&pid, EWB_DTYPE_I64, 1, &n);
    ewb_tensor_new(&split, EWB_DTYPE_I32, 1, &n);
    float *px = ewb_tensor_data(x);
    for (int64_t r = 0; r < N; r++) {
        for (int64_t l = 0; l < LEADS; l++)
            for (int64_t t = 0; t < SAMPLES; t++) px[(r * LEADS + l) * SAMPLES + t] = val(r, l, t);
        ((int32_t *)ewb_tensor_data(y))[2 * r] = r % 2 == 0;
        ((int32_t *)ewb_tensor_data(y))[2 * r + 1] = r % 5 == 0;
        ewb_f32(age)[r] = (float)r;
        ((int32_t *)ewb_tensor_data(sex))[r] = (int32_t)(r % 2);
        ((int64_t *)ewb_tensor_data(pid))[r] = 100 + r;
        ((int32_t *)ewb_tensor_data(split))[r] = (int32_t)(r % 3);
    }
    ewb_dataset_batch b = {.signals = x, .labels = y, .age = age, .sex = sex, .patient_id = pid, .split = split};
    OK(ewb_dataset_append(ds, &b));
    OK(ewb_dataset_close(ds));
    ewb_tensor *ts[6] = {x, y, age, sex, pid, split};
    for (int i = 0; i < 6; i++) ewb_tensor_free(ts[i]);
}

static ewb_loader_spec base_spec(void) {
    return (ewb_loader_spec){.file = path, .batch_size = 5, .shuffle = 1, .seed = 7, .epochs = 3, .threads = 2};
}

/* checks that a batch holds the records its index names; returns 0 if not */
static int batch_matches(const ewb_loader_batch *b, int64_t samples) {
    const int64_t *idx = ewb_tensor_data(b->index);
    const float *x = ewb_f32(b->signals);
    const uint8_t *y = ewb_tensor_data(b->labels);
    int ok = ewb_tensor_size(b->signals, 0) == b->size && ewb_tensor_size(b->signals, 1) == LEADS &&
             ewb_tensor_size(b->signals, 2) == samples && ewb_tensor_size(b->labels, 1) == 2;
    for (int64_t k = 0; ok && k < b->size; k++) {
        int64_t r = idx[k];
        for (int64_t l = 0; l < LEADS; l++)
            for (int64_t t = 0; t < samples; t++) ok &= x[(k * LEADS + l) * samples + t] == val(r, l, t);
        ok &= y[2 * k] == (r % 2 == 0) && y[2 * k + 1] == (r % 5 == 0);
        ok &= ewb_f32(b->age)[k] == (float)r && ((int32_t *)ewb_tensor_data(b->sex))[k] == r % 2;
        ok &= ((int64_t *)ewb_tensor_data(b->patient_id))[k] == 100 + r && ((int32_t *)ewb_tensor_data(b->split))[k] == r % 3;
    }
    return ok;
}

/* runs a loader to its end; order[] gets the record numbers in the order
   taken (up to cap); returns how many, or -1 on a failure */
static int64_t run_all(const ewb_loader_spec *sp, int64_t *order, int64_t cap, ewb_loader_stats *st) {
    ewb_loader *ld = NULL;
    if (ewb_loader_new(&ld, sp) != 0) { fprintf(stderr, "loader_new: %s\n", ewb_last_error()); return -1; }
    ewb_loader_info info;
    OK(ewb_loader_info_get(ld, &info));
    int64_t got = 0, batches = 0;
    ewb_loader_batch b;
    int rc;
    while ((rc = ewb_loader_next(ld, &b)) == 0) {
        CHECK(batch_matches(&b, info.samples), "batch %lld of epoch %lld does not hold the records of its index",
              (long long)b.batch, (long long)b.epoch);
        CHECK(b.epoch == sp->start_epoch + batches / info.batches_per_epoch && b.batch == batches % info.batches_per_epoch,
              "batch numbering: got epoch %lld batch %lld as the %lld-th", (long long)b.epoch, (long long)b.batch, (long long)batches);
        for (int64_t k = 0; k < b.size && got < cap; k++) order[got++] = ((int64_t *)ewb_tensor_data(b.index))[k];
        batches++;
        ewb_loader_batch_free(&b);
    }
    CHECK(rc == 1, "the end of the epochs: rc %d (%s)", rc, ewb_last_error());
    CHECK(ewb_loader_next(ld, &b) == 1, "next after the end must keep saying 'no more'");
    if (st) OK(ewb_loader_stats_get(ld, st));
    OK(ewb_loader_close(ld));
    return got;
}

static void test_order(void) {
    ewb_loader_spec sp = base_spec();
    int64_t a[3 * N], b[3 * N];
    ewb_loader_stats st;
    CHECK(run_all(&sp, a, 3 * N, &st) == 3 * N, "3 epochs of 37 records");
    CHECK(st.max_ahead <= 4 && st.max_ahead >= 1, "prefetch (default 2 * threads = 4): max ahead %lld", (long long)st.max_ahead);
    /* every record exactly once per epoch */
    for (int e = 0; e < 3; e++) {
        int seen[N] = {0};
        for (int64_t i = 0; i < N; i++) seen[a[e * N + i]]++;
        int once = 1;
        for (int r = 0; r < N; r++) once &= seen[r] == 1;
        CHECK(once, "epoch %d: every record exactly once", e);
    }
    /* shuffled, and differently per epoch */
    int ident = 1, same01 = 1, same12 = 1;
    for (int64_t i = 0; i < N; i++) {
        ident &= a[i] == i;
        same01 &= a[i] == a[N + i];
        same12 &= a[N + i] == a[2 * N + i];
    }
    CHECK(!ident, "epoch 0 is shuffled");
    CHECK(!same01 && !same12, "each epoch has its own order");
    /* the same order at 1 worker, and at prefetch 1 and 9 */
    int64_t threads[3] = {1, 2, 3}, prefetch[3] = {1, 9, 2};
    for (int k = 0; k < 3; k++) {
        ewb_loader_spec s2 = base_spec();
        s2.threads = threads[k], s2.prefetch = prefetch[k];
        CHECK(run_all(&s2, b, 3 * N, &st) == 3 * N, "3 epochs");
        CHECK(!memcmp(a, b, sizeof a), "the same order at %lld threads, prefetch %lld", (long long)threads[k], (long long)prefetch[k]);
        CHECK(st.max_ahead <= prefetch[k], "prefetch %lld: max ahead %lld", (long long)prefetch[k], (long long)st.max_ahead);
    }
    /* another seed, another order; start_epoch 1 resumes with epoch 1's order */
    sp.seed = 8;
    run_all(&sp, b, 3 * N, NULL);
    CHECK(memcmp(a, b, N * sizeof *a) != 0, "seed 8 differs from seed 7");
    sp = base_spec();
    sp.start_epoch = 1, sp.epochs = 2;
    CHECK(run_all(&sp, b, 3 * N, NULL) == 2 * N, "2 epochs");
    CHECK(!memcmp(a + N, b, 2 * N * sizeof *a), "start_epoch 1 gives epochs 1 and 2 of the full run");
    /* unshuffled: in order */
    sp = base_spec();
    sp.shuffle = 0, sp.epochs = 1;
    CHECK(run_all(&sp, b, N, NULL) == N, "1 epoch");
    int inorder = 1;
    for (int64_t i = 0; i < N; i++) inorder &= b[i] == i;
    CHECK(inorder, "shuffle = 0 keeps the records in order");
}

static void test_split_drop_last(void) {
    ewb_loader_spec sp = base_spec();
    int32_t splits[1] = {0};
    sp.splits = splits, sp.nsplits = 1, sp.epochs = 1, sp.drop_last = 1;
    int64_t a[N];
    /* split 0: records 0, 3, ..., 36 (13); drop_last with batch 5 keeps 10 */
    CHECK(run_all(&sp, a, N, NULL) == 10, "split 0 with drop_last: 2 batches of 5");
    int in_split = 1;
    for (int i = 0; i < 10; i++) in_split &= a[i] % 3 == 0;
    CHECK(in_split, "only split-0 records");
    sp.drop_last = 0;
    CHECK(run_all(&sp, a, N, NULL) == 13, "split 0 without drop_last: 13 records");
    int32_t two[2] = {1, 2};
    sp.splits = two, sp.nsplits = 2;
    CHECK(run_all(&sp, a, N, NULL) == 24, "splits 1 and 2: 24 records");
}

static void test_prefetch_and_close(void) {
    /* a slow caller: the workers fill the window, and never beyond it */
    ewb_loader_spec sp = base_spec();
    sp.prefetch = 3, sp.epochs = 0; /* unbounded */
    ewb_loader *ld = NULL;
    OK(ewb_loader_new(&ld, &sp));
    ewb_loader_batch b;
    for (int i = 0; i < 4; i++) {
        usleep(20000);
        OK(ewb_loader_next(ld, &b));
        ewb_loader_batch_free(&b);
    }
    usleep(50000); /* the workers are now blocked on a full window */
    CHECK(ewb_loader_ready(ld) == 1, "a slow caller finds the next batch ready");
    ewb_loader_stats st;
    OK(ewb_loader_stats_get(ld, &st));
    CHECK(st.max_ahead == 3, "max ahead reaches the prefetch depth 3 exactly, got %lld", (long long)st.max_ahead);
    CHECK(st.produced == st.taken + 3, "produced %lld = taken %lld + the 3 waiting", (long long)st.produced, (long long)st.taken);
    double t0 = ewb_now();
    OK(ewb_loader_close(ld)); /* mid-epoch, workers blocked, three batches not taken: freed (SAN checks) */
    CHECK(ewb_now() - t0 < 1.0, "close returns promptly");
    /* closing at once, while the workers are reading */
    for (int i = 0; i < 5; i++) {
        OK(ewb_loader_new(&ld, &sp));
        OK(ewb_loader_close(ld));
    }
    OK(ewb_loader_close(NULL));
}

static void test_errors(void) {
    ewb_loader *ld = (ewb_loader *)1;
    ewb_loader_spec sp = base_spec();
    sp.file = "/nonexistent/dir/x.h5";
    FAILS(ewb_loader_new(&ld, &sp), "/nonexistent/dir/x.h5");
    CHECK(ld == NULL, "out is NULL after a failure");
    sp = base_spec();
    sp.batch_size = 40, sp.drop_last = 1;
    FAILS(ewb_loader_new(&ld, &sp), "batch_size 40 is larger than the 37 records");
    sp.batch_size = 0;
    FAILS(ewb_loader_new(&ld, &sp), "batch_size must be >= 1");
    sp = base_spec();
    int32_t nine[1] = {9};
    sp.splits = nine, sp.nsplits = 1;
    FAILS(ewb_loader_new(&ld, &sp), "no records");
    sp = base_spec();
    ewb_loader_aug bad[2] = {{.kind = EWB_AUG_SCALE, .lo = 1, .hi = 1}, {.kind = 42}};
    sp.augs = bad, sp.naug = 2;
    FAILS(ewb_loader_new(&ld, &sp), "augmentation 2 has unknown kind 42");
    ewb_loader_aug crop = {.kind = EWB_AUG_CROP, .length = 65};
    sp.augs = &crop, sp.naug = 1;
    FAILS(ewb_loader_new(&ld, &sp), "length 65 must be in 1..64");
    sp.label_set = "nope";
    sp.naug = 0;
    FAILS(ewb_loader_new(&ld, &sp), "no label set 'nope'");
    /* in-memory signals: no fs, so no wander */
    int64_t s3[3] = {4, 2, 10};
    ewb_tensor *x = T(3, s3);
    ewb_loader_aug w = {.kind = EWB_AUG_WANDER, .amplitude = 0.1, .fmin = 0.1, .fmax = 0.5, .count = 1};
    ewb_loader_spec ts = {.signals = x, .batch_size = 2, .augs = &w, .naug = 1};
    FAILS(ewb_loader_new(&ld, &ts), "needs the sampling rate");
    int64_t s1 = 3;
    ewb_tensor *y = T(1, &s1);
    ts.naug = 0, ts.labels = y;
    FAILS(ewb_loader_new(&ld, &ts), "one row per record");
    ewb_tensor_free(x);
    ewb_tensor_free(y);
}

/* corrupt a chunk after opening: the worker's read fails and next() says so */
static void test_worker_error(void) {
    char bad[300];
    snprintf(bad, sizeof bad, "%s.bad.h5", path);
    FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
    char buf[1 << 16];
    size_t k, total = 0;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) { fwrite(buf, 1, k, out); total += k; }
    fclose(in);
    fclose(out);
    ewb_loader_spec sp = base_spec();
    sp.file = bad, sp.shuffle = 0, sp.threads = 1, sp.epochs = 1;
    /* overwrite the stored chunk of record 20 (its address from HDF5) */
    hid_t fid = H5Fopen(bad, H5F_ACC_RDONLY, H5P_DEFAULT), did = H5Dopen2(fid, "signals", H5P_DEFAULT);
    hsize_t coord[3] = {20, 0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    CHECK(H5Dget_chunk_info_by_coord(did, coord, &mask, &addr, &size) >= 0 && size > 0, "chunk of record 20");
    H5Dclose(did);
    H5Fclose(fid);
    FILE *f = fopen(bad, "r+b");
    fseek(f, (long)addr, SEEK_SET);
    memset(buf, 0x5a, sizeof buf);
    fwrite(buf, 1, size, f);
    fclose(f);
    (void)total;
    ewb_loader *ld = NULL;
    OK(ewb_loader_new(&ld, &sp));
    ewb_loader_batch b;
    int rc, failed = 0;
    int64_t good = 0;
    while ((rc = ewb_loader_next(ld, &b)) == 0) ewb_loader_batch_free(&b), good++;
    CHECK(good == 4, "the 4 batches before record 20 arrive, got %lld", (long long)good);
    if (rc < 0) {
        failed = 1;
        CHECK(strstr(ewb_last_error(), "loader: epoch 0, batch 4: ") && strstr(ewb_last_error(), bad) &&
              strstr(ewb_last_error(), "record 20: corrupt chunk"),
              "a worker's error names the batch and the file: '%s'", ewb_last_error());
        CHECK(ewb_loader_next(ld, &b) == -1, "the error stays");
    }
    CHECK(failed, "reading a corrupted signal chunk fails");
    OK(ewb_loader_close(ld));
    remove(bad);
}

/* the event loop's side: a uv_async handle woken by the workers */
typedef struct loop_ctx {
    ewb_loader *ld;
    uv_async_t async;
    int64_t batches, blocked, records;
} loop_ctx;

static void on_batch(uv_async_t *h) {
    loop_ctx *c = h->data;
    while (ewb_loader_ready(c->ld)) { /* async sends coalesce: take all that are ready */
        ewb_loader_batch b;
        double t0 = ewb_now();
        int rc = ewb_loader_next(c->ld, &b);
        if (ewb_now() - t0 > 0.05) c->blocked++;
        if (rc != 0) { uv_close((uv_handle_t *)h, NULL); return; }
        c->batches++;
        c->records += b.size;
        ewb_loader_batch_free(&b);
    }
}

static void test_uv_async(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop_ctx c = {0};
    ewb_loader_spec sp = base_spec();
    sp.epochs = 2;
    OK(ewb_loader_new(&c.ld, &sp));
    uv_async_init(&loop, &c.async, on_batch);
    c.async.data = &c;
    OK(ewb_loader_set_async(c.ld, &c.async));
    uv_async_send(&c.async); /* batches finished before set_async */
    uv_run(&loop, UV_RUN_DEFAULT); /* ends when on_batch closes the handle at the end */
    CHECK(c.batches == 16 && c.records == 2 * N, "the loop took 2 epochs: %lld batches, %lld records", (long long)c.batches,
          (long long)c.records);
    CHECK(c.blocked == 0, "next() never blocked in the loop's callback (%lld times)", (long long)c.blocked);
    OK(ewb_loader_close(c.ld));
    uv_loop_close(&loop);
}

/* ---------------- direct chunk reads against H5Dread ---------------- */

enum { DN = 40, DL = 12, DS = 1000, DB = 8, DEPOCHS = 2 };

/* an ecgwb dataset of DN records (f32 or int16 at gain 1000), in the default
   layout, or with `signals` rewritten deflate-only (no shuffle) */
static void make_deflated(const char *file, int int16, int shuffle) {
    ewb_dataset_spec sp = {.fs = 500, .leads = DL, .samples = DS, .int16 = int16, .gain = 1000, .compression = -1};
    int64_t shape[3] = {DN, DL, DS};
    ewb_tensor *x = NULL;
    ewb_dataset *ds = NULL;
    OK(ewb_tensor_new(&x, EWB_DTYPE_F32, 3, shape));
    float *p = ewb_tensor_data(x);
    for (int64_t i = 0; i < DN * DL * DS; i++)
        p[i] = 1.2f * sinf(0.02f * (float)(i % DS) + 0.7f * (float)(i / DS)) + 0.1f * (float)((i * 7919) % 997) / 997.0f;
    OK(ewb_dataset_create(&ds, file, &sp));
    OK(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = x}));
    OK(ewb_dataset_close(ds));
    if (!shuffle) {
        hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT), pl = H5Pcreate(H5P_DATASET_CREATE);
        hsize_t dims[3] = {DN, DL, DS}, maxd[3] = {H5S_UNLIMITED, DL, DS}, chunk[3] = {1, DL, DS};
        H5Pset_chunk(pl, 3, chunk);
        H5Pset_deflate(pl, 4);
        H5Ldelete(f, "signals", H5P_DEFAULT);
        hid_t s = H5Screate_simple(3, dims, maxd);
        hid_t d = H5Dcreate2(f, "signals", int16 ? H5T_STD_I16LE : H5T_IEEE_F32LE, s, H5P_DEFAULT, pl, H5P_DEFAULT);
        if (int16) {
            int16_t *q = malloc(sizeof(int16_t) * DN * DL * DS);
            for (int64_t i = 0; i < DN * DL * DS; i++) q[i] = (int16_t)nearbyint(p[i] * 1000.0);
            H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, q);
            free(q);
        } else {
            H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p);
        }
        double av[2] = {500, 1000};
        const char *an[2] = {"fs", "gain"};
        for (int i = 0; i < 1 + int16; i++) {
            hid_t as = H5Screate(H5S_SCALAR), a = H5Acreate2(d, an[i], H5T_IEEE_F64LE, as, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_DOUBLE, &av[i]);
            H5Aclose(a);
            H5Sclose(as);
        }
        H5Dclose(d);
        H5Sclose(s);
        H5Pclose(pl);
        H5Fclose(f);
    }
    ewb_tensor_free(x);
}

/* every batch's signals of a shuffled loader over DEPOCHS epochs, concatenated */
static float *all_batches(const char *file, int threads, int direct, const ewb_loader_aug *augs, int naug, int64_t *nfloats) {
    ewb_loader_spec sp = {.file = file, .batch_size = DB, .shuffle = 1, .seed = 11, .epochs = DEPOCHS, .threads = threads,
                          .augs = augs, .naug = naug};
    if (!direct) setenv("ECGWB_H5_DIRECT", "0", 1);
    ewb_loader *ld = NULL;
    int rc = ewb_loader_new(&ld, &sp);
    unsetenv("ECGWB_H5_DIRECT");
    CHECK(rc == 0, "loader on %s: %s", file, ewb_last_error());
    if (rc) return NULL;
    float *all = malloc(sizeof(float) * DEPOCHS * DN * DL * DS);
    int64_t n = 0;
    ewb_loader_batch b;
    while ((rc = ewb_loader_next(ld, &b)) == 0) {
        int64_t k = ewb_tensor_numel(b.signals);
        memcpy(all + n, ewb_tensor_data(b.signals), sizeof(float) * (size_t)k);
        n += k;
        ewb_loader_batch_free(&b);
    }
    CHECK(rc == 1, "loader ends cleanly: %s", ewb_last_error());
    OK(ewb_loader_close(ld));
    *nfloats = n;
    return all;
}

static void test_direct_reads(void) {
    char file[300];
    snprintf(file, sizeof file, "%s.direct.h5", path);
    ewb_loader_aug augs[2] = {{.kind = EWB_AUG_CROP, .length = 700}, {.kind = EWB_AUG_NOISE, .sigma = 0.05}};
    for (int int16 = 0; int16 <= 1; int16++)
        for (int shuffle = 1; shuffle >= 0; shuffle--) {
            make_deflated(file, int16, shuffle);
            for (int naug = 0; naug <= 2; naug += 2) {
                int64_t nref = 0, n = 0;
                int64_t before = ewb_dataset_direct_records();
                float *ref = all_batches(file, 1, 0, augs, naug, &nref);
                CHECK(ewb_dataset_direct_records() == before, "ECGWB_H5_DIRECT=0 reads with H5Dread");
                CHECK(nref == DEPOCHS * DN * DL * (naug ? 700 : DS), "all records, both epochs");
                for (int threads = 1; threads <= 3; threads++) {
                    before = ewb_dataset_direct_records();
                    float *got = all_batches(file, threads, 1, augs, naug, &n);
                    int64_t direct = ewb_dataset_direct_records() - before;
                    CHECK(ref && got && n == nref && !memcmp(ref, got, sizeof(float) * (size_t)n),
                          "%s, %s, %s, %d workers: the same batches as H5Dread, bit for bit", int16 ? "int16" : "f32",
                          shuffle ? "shuffle + deflate" : "deflate", naug ? "crop + noise" : "no augmentation", threads);
                    CHECK(direct == DEPOCHS * DN, "every record by the direct path: %lld of %d", (long long)direct, DEPOCHS * DN);
                    free(got);
                }
                free(ref);
            }
        }
    remove(file);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/ecgwb_test_loader_%d.h5", tmp ? tmp : "/tmp", (int)getpid());
    make_dataset();
    test_order();
    test_split_drop_last();
    test_prefetch_and_close();
    test_errors();
    test_worker_error();
    test_uv_async();
    test_direct_reads();
    remove(path);
    return check_report();
}
