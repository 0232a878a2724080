/* test_tokenizer.c: the byte-level BPE tokenizer (core/tokenizer.c).
 * References: GPT-2's pre-tokenisation regex run by Python's `regex` module
 * (tests/fixtures/pretokenize_gpt2.txt, written by
 * tests/reference/pretokenize_gpt2.py); merges worked out by hand on two
 * tiny corpora; a naive GPT-2 bpe() (below) for the encoder's heap-based
 * merging. Also: exact round trips on random bytes and UTF-8, special tokens,
 * batches, save/load, determinism, compression on clinical report text, and
 * errors. Prints training and encoding speed (MB/s) on a generated corpus of
 * ECGWB_TOKENIZER_MB megabytes (default 2; 0.5 under ASan). */
#include "check.h"
#include <stdint.h>

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) { /* xorshift64 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int rndi(int n) { return (int)(rnd() % (uint64_t)n); }

/* ------------------------------------------------------- report text corpus */
typedef struct { char *s; int64_t n, cap; } buf;
static void bput(buf *b, const char *s) {
    int64_t l = (int64_t)strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = 2 * (b->n + l + 1);
        b->s = realloc(b->s, (size_t)b->cap);
    }
    memcpy(b->s + b->n, s, (size_t)l + 1);
    b->n += l;
}
static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    bput(b, tmp);
}

/* one clinical-style 12-lead ECG report */
static void report(buf *b) {
    static const char *rhythm[] = {"Sinus rhythm", "Sinus tachycardia", "Sinus bradycardia", "Atrial fibrillation",
                                   "Atrial flutter with 2:1 AV conduction", "Sinus arrhythmia"};
    static const char *finding[] = {
        "Left bundle branch block.", "Right bundle branch block.", "First-degree AV block.",
        "Left ventricular hypertrophy by voltage criteria.", "ST elevation in leads V1–V4, consider anterior STEMI.",
        "T-wave inversion in leads II, III and aVF.", "Occasional premature ventricular complexes.",
        "Low QRS voltage in the limb leads.", "Left axis deviation.", "Prolonged QT interval.",
        "Incomplete right bundle branch block.", "Nonspecific ST-T wave abnormality.",
        "Poor R-wave progression in V1–V3.", "Q waves in leads II, III, aVF, consistent with old inferior infarct."};
    static const char *concl[] = {"Normal ECG.", "Abnormal ECG.", "Borderline ECG.", "Otherwise normal ECG.",
                                  "Compared with the previous tracing, no significant change."};
    int hr = 45 + rndi(100), pr = 120 + rndi(120), qrs = 70 + rndi(90), qt = 320 + rndi(140);
    bprintf(b, "%s at %d bpm. PR interval %d ms, QRS duration %d ms, QT/QTc %d/%d ms. ", rhythm[rndi(6)], hr, pr, qrs,
            qt, qt + rndi(60));
    bprintf(b, "QRS axis %+d°. ", -60 + rndi(180));
    int k = rndi(3);
    for (int i = 0; i < k; i++) bprintf(b, "%s ", finding[rndi(14)]);
    bprintf(b, "%s\n", concl[rndi(5)]);
}

/* n reports, each its own string (NUL-separated inside one buffer) */
typedef struct { char **t; int64_t *len; int64_t n; buf all; } corpus;
static corpus make_corpus(int64_t bytes) {
    corpus c = {0};
    int64_t cap = 0;
    int64_t *starts = NULL;
    while (c.all.n < bytes) {
        if (c.n == cap) {
            cap = cap ? 2 * cap : 1024;
            starts = realloc(starts, sizeof(int64_t) * cap);
        }
        starts[c.n++] = c.all.n;
        report(&c.all);
        bput(&c.all, "\x01"); /* separator, replaced by NUL below */
    }
    c.t = malloc(sizeof(char *) * c.n);
    c.len = malloc(sizeof(int64_t) * c.n);
    for (int64_t i = 0; i < c.n; i++) {
        int64_t end = i + 1 < c.n ? starts[i + 1] - 1 : c.all.n - 1;
        c.all.s[end] = 0;
        c.t[i] = c.all.s + starts[i];
        c.len[i] = end - starts[i];
    }
    free(starts);
    return c;
}
static void corpus_free(corpus *c) {
    free(c->t);
    free(c->len);
    free(c->all.s);
}

/* ----------------------------------------------------------------- helpers */
static int64_t *ids_of(ewb_tensor *t, int64_t *n) {
    *n = ewb_tensor_numel(t);
    return (int64_t *)ewb_tensor_data(t);
}

/* encodes and decodes; 1 if the bytes come back exactly */
static int round_trip(ewb_tokenizer *tk, const char *s, int64_t n, int flags) {
    ewb_tensor *ids = NULL;
    if (ewb_tokenizer_encode(tk, s, n, flags, &ids)) return 0;
    int64_t need = 0;
    char *out = malloc((size_t)n + 1);
    int ok = ewb_tokenizer_decode(tk, ids, 0, out, n, &need) == 0 && need == n && memcmp(out, s, (size_t)n) == 0;
    free(out);
    ewb_tensor_free(ids);
    return ok;
}

static char *decode_all(ewb_tokenizer *tk, ewb_tensor *ids, int flags, int64_t *n) {
    int64_t need = 0;
    if (ewb_tokenizer_decode(tk, ids, flags, NULL, 0, &need)) return NULL;
    char *s = malloc((size_t)need + 1);
    if (ewb_tokenizer_decode(tk, ids, flags, s, need, &need)) { free(s); return NULL; }
    s[need] = 0;
    *n = need;
    return s;
}

/* naive GPT-2 bpe() on one word: repeatedly merge every occurrence (left to
   right) of the adjacent pair with the lowest merge index */
static int64_t naive_bpe(ewb_tokenizer *tk, const unsigned char *s, int64_t n, int64_t *out) {
    int64_t m = ewb_tokenizer_num_merges(tk), len = n;
    for (int64_t i = 0; i < n; i++) out[i] = s[i];
    for (;;) {
        int64_t best = -1;
        for (int64_t i = 0; i + 1 < len; i++)
            for (int64_t r = 0; r < (best < 0 ? m : best); r++) {
                int64_t a, b;
                ewb_tokenizer_merge(tk, r, &a, &b);
                if (a == out[i] && b == out[i + 1]) { best = r; break; }
            }
        if (best < 0) return len;
        int64_t a, b, j = 0;
        ewb_tokenizer_merge(tk, best, &a, &b);
        for (int64_t i = 0; i < len;) {
            if (i + 1 < len && out[i] == a && out[i + 1] == b) { out[j++] = 256 + best; i += 2; }
            else out[j++] = out[i++];
        }
        len = j;
    }
}

static int hexbytes(const char *h, int64_t n, char *out) {
    for (int64_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (char)v;
    }
    return (int)(n / 2);
}

/* ------------------------------------------------------------------- tests */

static void test_pretokenize_gpt2(void) {
    FILE *f = fopen("tests/fixtures/pretokenize_gpt2.txt", "r");
    CHECK(f != NULL, "tests/fixtures/pretokenize_gpt2.txt is missing (run from the repo root)");
    if (!f) return;
    char line[8192], text[4096], word[4096];
    int cases = 0, bad = 0;
    int64_t ends[1024];
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        int n = hexbytes(line, tab - line, text);
        int64_t nw = -1;
        OK(ewb_pretokenize(text, n, ends, 1024, &nw));
        /* the expected words, one at a time */
        char *p = tab + 1;
        int64_t k = 0, start = 0;
        int good = 1;
        while (*p && *p != '\n') {
            char *q = p;
            while (*q && *q != ',' && *q != '\n') q++;
            int wl = hexbytes(p, q - p, word);
            if (k >= nw || ends[k] - start != wl || memcmp(text + start, word, (size_t)wl) != 0) good = 0;
            if (k < nw) start = ends[k];
            k++;
            p = *q == ',' ? q + 1 : q;
        }
        if (k != nw) good = 0;
        if (!good && bad++ < 5) {
            fprintf(stderr, "pretokenize differs from GPT-2 on \"%.*s\": got", n, text);
            for (int64_t i = 0, s0 = 0; i < nw; s0 = ends[i], i++) fprintf(stderr, " [%.*s]", (int)(ends[i] - s0), text + s0);
            fprintf(stderr, "\n");
        }
        cases++;
    }
    fclose(f);
    CHECK(cases >= 300, "only %d fixture cases", cases);
    CHECK(bad == 0, "%d of %d texts split differently from GPT-2's regex", bad, cases);
    /* counting only, and NUL-terminated input */
    int64_t nw = 0;
    OK(ewb_pretokenize("a b", -1, NULL, 0, &nw));
    CHECK(nw == 2, "2 words, got %lld", (long long)nw);
    /* invalid UTF-8 bytes are punctuation characters of their own */
    OK(ewb_pretokenize("ab\xff\xfe cd\xc3", 8, ends, 16, &nw));
    CHECK(nw == 4 && ends[0] == 2 && ends[1] == 4 && ends[2] == 7 && ends[3] == 8,
          "invalid bytes: %lld words", (long long)nw);
}

/* the Sennrich example, each word its own text: merges worked out by hand
   (count, then smaller (left, right) ids on ties):
     counts l o 7, o w 7, w e 8, e r 2, n e 6, e w 6, e s 9, s t 9, w i 3, i d 3, d e 3
     1. e s (9; beats s t 9: 'e' < 's')  2. es t   3. l o (7; beats o w)  4. lo w
     5. e w (6; beats n e and w es by ids)  6. n ew  7. new est
     8. d est (3; (100,257) < (105,100) < (119,105))  9. i dest  10. w idest
     11. e r (2; (101,114) < (259,101))  12. low er  -- then no pairs are left */
static void test_merges_by_hand(void) {
    const char *texts[16];
    int k = 0;
    for (int i = 0; i < 5; i++) texts[k++] = "low";
    for (int i = 0; i < 2; i++) texts[k++] = "lower";
    for (int i = 0; i < 6; i++) texts[k++] = "newest";
    for (int i = 0; i < 3; i++) texts[k++] = "widest";
    ewb_tokenizer *tk = NULL;
    OK(ewb_tokenizer_new(&tk, NULL, 0));
    OK(ewb_tokenizer_train(tk, texts, NULL, k, 300));
    static const char *want[][2] = {{"e", "s"}, {"es", "t"}, {"l", "o"}, {"lo", "w"}, {"e", "w"}, {"n", "ew"},
                                    {"new", "est"}, {"d", "est"}, {"i", "dest"}, {"w", "idest"}, {"e", "r"},
                                    {"low", "er"}};
    int64_t nm = ewb_tokenizer_num_merges(tk);
    CHECK(nm == 12, "12 merges (then no pairs left), got %lld", (long long)nm);
    CHECK(ewb_tokenizer_vocab_size(tk) == 268, "vocab 268, got %lld", (long long)ewb_tokenizer_vocab_size(tk));
    for (int64_t i = 0; i < nm && i < 12; i++) {
        int64_t a, b, la, lb;
        const char *sa, *sb;
        OK(ewb_tokenizer_merge(tk, i, &a, &b));
        OK(ewb_tokenizer_token(tk, a, &sa, &la));
        OK(ewb_tokenizer_token(tk, b, &sb, &lb));
        CHECK(la == (int64_t)strlen(want[i][0]) && memcmp(sa, want[i][0], (size_t)la) == 0 &&
                  lb == (int64_t)strlen(want[i][1]) && memcmp(sb, want[i][1], (size_t)lb) == 0,
              "merge %lld: got '%.*s'+'%.*s', want '%s'+'%s'", (long long)i, (int)la, sa, (int)lb, sb, want[i][0],
              want[i][1]);
    }
    CHECK(ewb_tokenizer_token_id(tk, "lower", 5) == 267, "'lower' is token 267");
    CHECK(ewb_tokenizer_token_id(tk, "xyz", 3) == -1, "'xyz' is no token");
    CHECK(ewb_tokenizer_token_id(tk, "x", 1) == 'x', "'x' is byte token 120");
    ewb_tokenizer_free(tk);

    /* through the pre-tokeniser: "low lower lowest" -> words low, " lower", " lowest"
       counts l o 3, o w 3, ' ' l 2, w e 2, e r 1, e s 1, s t 1
       1. l o (3; (108,111) < (111,119))  2. lo w (3)  3. ' ' low (2; (32,257) < (257,101))
       4. ' low' e (2)  5. s t (1; (115,116) < (259,114) < (259,115))  6. ' lowe' r  7. ' lowe' st */
    const char *one = "low lower lowest";
    OK(ewb_tokenizer_new(&tk, NULL, 0));
    OK(ewb_tokenizer_train(tk, &one, NULL, 1, 1000));
    static const int64_t want2[][2] = {{'l', 'o'}, {256, 'w'}, {' ', 257}, {258, 'e'}, {'s', 't'}, {259, 'r'}, {259, 260}};
    CHECK(ewb_tokenizer_num_merges(tk) == 7, "7 merges, got %lld", (long long)ewb_tokenizer_num_merges(tk));
    for (int64_t i = 0; i < 7 && i < ewb_tokenizer_num_merges(tk); i++) {
        int64_t a, b;
        OK(ewb_tokenizer_merge(tk, i, &a, &b));
        CHECK(a == want2[i][0] && b == want2[i][1], "merge %lld: (%lld, %lld), want (%lld, %lld)", (long long)i,
              (long long)a, (long long)b, (long long)want2[i][0], (long long)want2[i][1]);
    }
    ewb_tensor *ids = NULL;
    int64_t n, *p;
    OK(ewb_tokenizer_encode(tk, "low lowest lower lowly", -1, 0, &ids));
    p = ids_of(ids, &n);
    static const int64_t want_ids[] = {257, 262, 261, 258, 'l', 'y'};
    int same = n == 6;
    for (int64_t i = 0; same && i < n; i++) same = p[i] == want_ids[i];
    CHECK(same, "encode 'low lowest lower lowly' gives 257 262 261 258 l y (%lld ids)", (long long)n);
    ewb_tensor_free(ids);
    /* a budget below what the corpus allows stops early */
    OK(ewb_tokenizer_train(tk, &one, NULL, 1, 259));
    CHECK(ewb_tokenizer_num_merges(tk) == 3 && ewb_tokenizer_vocab_size(tk) == 259, "3 merges for vocab 259");
    ewb_tokenizer_free(tk);
}

static const char *SPECIALS[] = {"<pad>", "<bos>", "<eos>", "<ecg>", "<gen>"};

static void test_round_trip(ewb_tokenizer *tk) {
    /* random byte strings, NULs and invalid UTF-8 included */
    char s[512];
    int fails = 0;
    for (int t = 0; t < 300; t++) {
        int n = rndi(500);
        for (int i = 0; i < n; i++) s[i] = (char)(t % 3 == 0 ? rndi(256) : " abcdeflowrst<>\n"[rndi(16)]);
        if (!round_trip(tk, s, n, 0) || !round_trip(tk, s, n, EWB_TOK_NO_SPECIAL)) fails++;
    }
    CHECK(fails == 0, "%d random byte strings did not round-trip", fails);
    /* random UTF-8 made of multi-byte characters and emoji */
    static const char *pieces[] = {"é", "ü", "ß", "µV", "°", "±", "→", "≥", "中文", "心电图", "😀", "👍🏽", "👨‍👩‍👧",
                                   " ", "\n", "\t", "sinus ", "rhythm", "72", "'s", "<ecg>", "<eos>", "<e", "os>",
                                   "\u00a0", "Ω", "\xf0\x9f", "\xe2\x82"};
    fails = 0;
    for (int t = 0; t < 300; t++) {
        buf b = {0};
        bput(&b, "");
        int k = rndi(60);
        for (int i = 0; i < k; i++) bput(&b, pieces[rndi(28)]);
        if (!round_trip(tk, b.s, b.n, 0) || !round_trip(tk, b.s, b.n, EWB_TOK_NO_SPECIAL)) fails++;
        free(b.s);
    }
    CHECK(fails == 0, "%d UTF-8 strings did not round-trip", fails);
    /* one long word (no spaces) of 200 kB: the heap-based merge */
    int64_t big = 200000;
    char *w = malloc((size_t)big);
    for (int64_t i = 0; i < big; i++) w[i] = "lowerst"[rndi(7)];
    CHECK(round_trip(tk, w, big, 0), "a 200 kB word round-trips");
    free(w);
    CHECK(round_trip(tk, "", 0, 0), "the empty string round-trips");
}

/* the heap-based encoder against the naive GPT-2 bpe(), word by word */
static void test_against_naive(ewb_tokenizer *tk, corpus *c) {
    int64_t ends[4096], nw, *ref = malloc(sizeof(int64_t) * 4096), mism = 0, words = 0, long_words = 0;
    for (int64_t t = 0; t < 200; t++) {
        char s[600];
        int n;
        if (t % 2) { /* a report */
            n = (int)(c->len[t] < 599 ? c->len[t] : 599);
            memcpy(s, c->t[t], (size_t)n);
        } else { /* letters only: long words with many candidate merges */
            n = 1 + rndi(300);
            for (int i = 0; i < n; i++) s[i] = "aeinorst QRSTVms"[rndi(t % 4 ? 16 : 4)];
        }
        OK(ewb_pretokenize(s, n, ends, 4096, &nw));
        for (int64_t i = 0, st = 0; i < nw; st = ends[i], i++) {
            ewb_tensor *ids = NULL;
            OK(ewb_tokenizer_encode(tk, s + st, ends[i] - st, EWB_TOK_NO_SPECIAL, &ids));
            if (!ids) continue;
            int64_t m, *p = ids_of(ids, &m), k = naive_bpe(tk, (const unsigned char *)s + st, ends[i] - st, ref);
            if (m != k || memcmp(p, ref, sizeof(int64_t) * k) != 0) mism++;
            words++;
            long_words += ends[i] - st > 64; /* the heap path; shorter words take the linear scan */
            ewb_tensor_free(ids);
        }
    }
    CHECK(mism == 0, "%lld of %lld words encode differently from the naive bpe()", (long long)mism, (long long)words);
    CHECK(long_words >= 20, "only %lld words longer than 64 bytes were compared", (long long)long_words);
    free(ref);
}

static void test_specials(ewb_tokenizer *tk) {
    int64_t pad, bos, eos, ecg, gen;
    OK(ewb_tokenizer_special_id(tk, "<pad>", &pad));
    OK(ewb_tokenizer_special_id(tk, "<bos>", &bos));
    OK(ewb_tokenizer_special_id(tk, "<eos>", &eos));
    OK(ewb_tokenizer_special_id(tk, "<ecg>", &ecg));
    OK(ewb_tokenizer_special_id(tk, "<gen>", &gen));
    int64_t base = 256 + ewb_tokenizer_num_merges(tk);
    CHECK(pad == base && bos == base + 1 && eos == base + 2 && ecg == base + 3 && gen == base + 4,
          "specials follow the merges in order");
    /* adjacent to text on both sides, repeated, at the ends */
    const char *s = "<ecg><ecg>sinus<ecg>rhythm <gen>x<eos>";
    ewb_tensor *ids = NULL;
    OK(ewb_tokenizer_encode(tk, s, -1, EWB_TOK_BOS | EWB_TOK_EOS, &ids));
    int64_t n, *p = ids_of(ids, &n);
    int specials = 0, ok = n > 4 && p[0] == bos && p[1] == ecg && p[2] == ecg && p[n - 1] == eos && p[n - 2] == eos;
    for (int64_t i = 0; i < n; i++) specials += p[i] >= base;
    CHECK(ok && specials == 7, "specials never split: %d special ids", specials);
    /* the special tokens' text never hides inside an ordinary token */
    int64_t hidden = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *b;
        int64_t l;
        ewb_tokenizer_token(tk, p[i], &b, &l);
        for (int64_t j = 0; p[i] < base && j + 5 <= l; j++) hidden += memcmp(b + j, "<ecg>", 5) == 0;
    }
    CHECK(hidden == 0, "no merged token holds '<ecg>'");
    int64_t dn;
    char *d = decode_all(tk, ids, 0, &dn);
    CHECK(d && dn == (int64_t)strlen(s) + 10 && memcmp(d, "<bos>", 5) == 0 && memcmp(d + 5, s, strlen(s)) == 0,
          "decode gives <bos> + text + <eos>");
    free(d);
    d = decode_all(tk, ids, EWB_TOK_SKIP_SPECIAL, &dn);
    CHECK(d && strcmp(d, "sinusrhythm x") == 0, "skip_special: got '%s'", d ? d : "(null)");
    free(d);
    ewb_tensor_free(ids);
    /* EWB_TOK_NO_SPECIAL: plain text, no special ids */
    OK(ewb_tokenizer_encode(tk, s, -1, EWB_TOK_NO_SPECIAL, &ids));
    p = ids_of(ids, &n);
    specials = 0;
    for (int64_t i = 0; i < n; i++) specials += p[i] >= base;
    CHECK(specials == 0, "NO_SPECIAL: %d special ids", specials);
    ewb_tensor_free(ids);
    /* longest match first: "<e" and "<eos>" both special */
    ewb_tokenizer *t2 = NULL;
    const char *sp2[] = {"<e", "<eos>", "<eo"};
    OK(ewb_tokenizer_new(&t2, sp2, 3));
    OK(ewb_tokenizer_encode(t2, "<eos><e<eo<eox", -1, 0, &ids));
    p = ids_of(ids, &n);
    ok = n == 5 && p[0] == 257 && p[1] == 256 && p[2] == 258 && p[3] == 258 && p[4] == 'x';
    CHECK(ok, "longest special first: <eos> <e <eo <eo x (%lld ids)", (long long)n);
    ewb_tensor_free(ids);
    /* a user special added after training: next id, recognised at once */
    int64_t id;
    OK(ewb_tokenizer_add_special(t2, "[QRS]", &id));
    CHECK(id == 259 && ewb_tokenizer_vocab_size(t2) == 260, "added special gets id 259");
    OK(ewb_tokenizer_encode(t2, "a[QRS]b", -1, 0, &ids));
    p = ids_of(ids, &n);
    CHECK(n == 3 && p[1] == 259, "user special recognised");
    ewb_tensor_free(ids);
    FAILS(ewb_tokenizer_add_special(t2, "<eos>", NULL), "given twice");
    FAILS(ewb_tokenizer_add_special(t2, "", NULL), "must not be empty");
    FAILS(ewb_tokenizer_encode(t2, "x", 1, EWB_TOK_BOS, &ids), "needs a special token '<bos>'");
    ewb_tokenizer_free(t2);
}

static void test_batch(ewb_tokenizer *tk) {
    const char *texts[3] = {"Sinus rhythm.", "", "Atrial fibrillation at 120 bpm with <ecg> evidence."};
    ewb_tensor *x = NULL, *m = NULL, *one = NULL;
    int64_t pad, eos;
    ewb_tokenizer_special_id(tk, "<pad>", &pad);
    ewb_tokenizer_special_id(tk, "<eos>", &eos);
    OK(ewb_tokenizer_encode_batch(tk, texts, NULL, 3, 0, EWB_TOK_EOS, &x, &m));
    int64_t lens[3], T = 0;
    for (int i = 0; i < 3; i++) {
        OK(ewb_tokenizer_encode(tk, texts[i], -1, EWB_TOK_EOS, &one));
        lens[i] = ewb_tensor_numel(one);
        if (lens[i] > T) T = lens[i];
        ewb_tensor_free(one);
    }
    CHECK(x && ewb_tensor_ndim(x) == 2 && ewb_tensor_size(x, 0) == 3 && ewb_tensor_size(x, 1) == T &&
              ewb_tensor_dtype(x) == EWB_DTYPE_I64 && ewb_tensor_dtype(m) == EWB_DTYPE_BOOL,
          "batch (3, %lld) i64 + bool mask", (long long)T);
    if (x && m) {
        int64_t *px = ewb_tensor_data(x);
        uint8_t *pm = ewb_tensor_data(m);
        int good = 1;
        for (int i = 0; i < 3; i++) {
            OK(ewb_tokenizer_encode(tk, texts[i], -1, EWB_TOK_EOS, &one));
            int64_t *po = ewb_tensor_data(one);
            for (int64_t t = 0; t < T; t++) {
                int in = t < lens[i];
                good &= pm[i * T + t] == in && px[i * T + t] == (in ? po[t] : pad);
            }
            ewb_tensor_free(one);
        }
        CHECK(good, "right padding: rows equal single encodings, <pad> and mask 0 after");
    }
    ewb_tensor_free(x);
    ewb_tensor_free(m);
    /* left padding with a fixed length that cuts the longest */
    OK(ewb_tokenizer_encode_batch(tk, texts, NULL, 3, 4, EWB_TOK_EOS | EWB_TOK_PAD_LEFT, &x, &m));
    if (x && m) {
        int64_t *px = ewb_tensor_data(x);
        uint8_t *pm = ewb_tensor_data(m);
        CHECK(ewb_tensor_size(x, 1) == 4, "max_len 4");
        CHECK(pm[4] == 0 && pm[5] == 0 && pm[6] == 0 && pm[7] == 1 && px[7] == eos && px[4] == pad,
              "left padding: the empty text is <pad> <pad> <pad> <eos>");
        CHECK(pm[8] && pm[11] && px[11] != eos, "the long text is cut to its first 4 ids");
    }
    ewb_tensor_free(x);
    ewb_tensor_free(m);
    OK(ewb_tokenizer_encode_batch(tk, texts, NULL, 0, 0, 0, &x, &m));
    CHECK(x && ewb_tensor_size(x, 0) == 0, "an empty batch");
    ewb_tensor_free(x);
    ewb_tensor_free(m);
}

static void test_save_load(ewb_tokenizer *tk, corpus *c) {
    const char *file = "build/tests/tokenizer_test.bpe";
    OK(ewb_tokenizer_add_special(tk, "weird \\ special\n\xc3\xa9", NULL));
    OK(ewb_tokenizer_save(tk, file));
    ewb_tokenizer *t2 = NULL;
    OK(ewb_tokenizer_load(&t2, file));
    if (!t2) return;
    CHECK(ewb_tokenizer_vocab_size(t2) == ewb_tokenizer_vocab_size(tk) &&
              ewb_tokenizer_num_merges(t2) == ewb_tokenizer_num_merges(tk) &&
              ewb_tokenizer_num_specials(t2) == ewb_tokenizer_num_specials(tk),
          "same sizes after load");
    int same = 1;
    for (int64_t id = 0; id < ewb_tokenizer_vocab_size(tk); id++) {
        const char *a, *b;
        int64_t la, lb;
        ewb_tokenizer_token(tk, id, &a, &la);
        ewb_tokenizer_token(t2, id, &b, &lb);
        same &= la == lb && memcmp(a, b, (size_t)la) == 0;
    }
    CHECK(same, "every token's bytes equal after load");
    same = 1;
    for (int64_t i = 0; i < 200 && i < c->n; i++) {
        ewb_tensor *x = NULL, *y = NULL;
        OK(ewb_tokenizer_encode(tk, c->t[i], c->len[i], EWB_TOK_BOS, &x));
        OK(ewb_tokenizer_encode(t2, c->t[i], c->len[i], EWB_TOK_BOS, &y));
        same &= x && y && ewb_tensor_numel(x) == ewb_tensor_numel(y) &&
                memcmp(ewb_tensor_data(x), ewb_tensor_data(y), 8 * ewb_tensor_numel(x)) == 0;
        ewb_tensor_free(x);
        ewb_tensor_free(y);
    }
    CHECK(same, "identical encodings after load");
    ewb_tensor *x = NULL;
    OK(ewb_tokenizer_encode(t2, "a weird \\ special\n\xc3\xa9!", -1, 0, &x));
    int64_t wid = -1;
    OK(ewb_tokenizer_special_id(t2, "weird \\ special\n\xc3\xa9", &wid));
    CHECK(x && ewb_tensor_numel(x) == 4 && ((int64_t *)ewb_tensor_data(x))[2] == wid && wid == ewb_tokenizer_vocab_size(tk) - 1,
          "the escaped special survives save/load: a, ' ', special, '!'");
    ewb_tensor_free(x);
    /* saving the loaded one gives the same file */
    const char *file2 = "build/tests/tokenizer_test2.bpe";
    OK(ewb_tokenizer_save(t2, file2));
    FILE *f1 = fopen(file, "rb"), *f2 = fopen(file2, "rb");
    int equal = f1 && f2;
    while (equal) {
        int a = fgetc(f1), b = fgetc(f2);
        equal = a == b;
        if (a == EOF) break;
    }
    CHECK(equal, "save(load(f)) == f byte for byte");
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    ewb_tokenizer_free(t2);

    /* corrupt files */
    FILE *f = fopen(file, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    CHECK(fread(data, 1, (size_t)size, f) == (size_t)size, "read back");
    fclose(f);
    const char *bad = "build/tests/tokenizer_bad.bpe";
    /* a flipped digit in the merges: the checksum catches it */
    char *copy = malloc((size_t)size);
    memcpy(copy, data, (size_t)size);
    char *mline = strstr(copy, "merges ");
    char *digit = mline ? strchr(mline + 7, '\n') + 1 : NULL;
    if (digit) *digit = *digit == '1' ? '2' : '1';
    f = fopen(bad, "wb");
    fwrite(copy, 1, (size_t)size, f);
    fclose(f);
    FAILS(ewb_tokenizer_load(&t2, bad), "checksum mismatch");
    /* truncated */
    f = fopen(bad, "wb");
    fwrite(data, 1, (size_t)size / 2, f);
    fclose(f);
    FAILS(ewb_tokenizer_load(&t2, bad), "is corrupt");
    /* a well-formed file with a wrong magic, and one whose merge uses a later id */
    const char *body1 = "ecgwb-bpe 2\nspecials 0\nmerges 0\n";
    const char *body2 = "ecgwb-bpe 1\nspecials 0\nmerges 2\n97 98\n257 97\n";
    const char *body3 = "ecgwb-bpe 1\nspecials 1\n<x\\q1>\nmerges 0\n";
    const char *body4 = "ecgwb-bpe 1\nspecials 0\nmerges 2\n97 98\n97 98\n";
    const char *body5 = "ecgwb-bpe 1\nspecials 0\nmerges 1\n97 98\nextra\n";
    const char *bodies[] = {body1, body2, body3, body4, body5};
    const char *needles[] = {"not an ecgwb-bpe 1 file", "not yet defined", "bad escape", "repeats the pair",
                             "unexpected lines"};
    for (int i = 0; i < 5; i++) {
        f = fopen(bad, "wb");
        fprintf(f, "%schecksum %016llx\n", bodies[i], (unsigned long long)0);
        fclose(f);
        /* the right checksum, so the parser itself must find the fault */
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *q = bodies[i]; *q; q++) h = (h ^ (unsigned char)*q) * 0x100000001b3ULL;
        f = fopen(bad, "wb");
        fprintf(f, "%schecksum %016llx\n", bodies[i], (unsigned long long)h);
        fclose(f);
        FAILS(ewb_tokenizer_load(&t2, bad), needles[i]);
    }
    /* and the same writer with a good body loads */
    {
        const char *good = "ecgwb-bpe 1\nspecials 1\n<x\\x20y>\nmerges 2\n97 98\n256 99\n";
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *q = good; *q; q++) h = (h ^ (unsigned char)*q) * 0x100000001b3ULL;
        f = fopen(bad, "wb");
        fprintf(f, "%schecksum %016llx\n", good, (unsigned long long)h);
        fclose(f);
        OK(ewb_tokenizer_load(&t2, bad));
        if (t2) {
            CHECK(ewb_tokenizer_token_id(t2, "abc", 3) == 257 && ewb_tokenizer_token_id(t2, "<x y>", 5) == 258,
                  "a hand-written file: abc = 257, '<x y>' = 258");
            ewb_tokenizer_free(t2);
        }
    }
    FAILS(ewb_tokenizer_load(&t2, "build/tests/no_such_tokenizer.bpe"), "cannot open");
    CHECK(t2 == NULL, "*out stays NULL on failure");
    free(copy);
    free(data);
}

static void test_errors(ewb_tokenizer *tk) {
    ewb_tokenizer *t = NULL;
    const char *txt = "abc";
    OK(ewb_tokenizer_new(&t, SPECIALS, 5));
    FAILS(ewb_tokenizer_train(t, &txt, NULL, 1, 255), "vocab size 255 < 256");
    FAILS(ewb_tokenizer_train(t, &txt, NULL, 1, 260), "vocab size 260 < 256 bytes + 5 special tokens");
    FAILS(ewb_tokenizer_train(t, &txt, NULL, -1, 300), "negative number of texts");
    FAILS(ewb_tokenizer_train(t, NULL, NULL, 1, 300), "texts is NULL");
    int64_t id;
    FAILS(ewb_tokenizer_special_id(t, "<unk>", &id), "unknown special token '<unk>'");
    FAILS(ewb_tokenizer_token(t, 261, NULL, NULL), "id 261 out of range");
    FAILS(ewb_tokenizer_token(t, -1, NULL, NULL), "out of range");
    FAILS(ewb_tokenizer_merge(t, 0, NULL, NULL), "merge 0 out of range");
    ewb_tokenizer_free(t);
    const char *dup[] = {"<a>", "<a>"};
    FAILS(ewb_tokenizer_new(&t, dup, 2), "given twice");
    CHECK(t == NULL, "no tokenizer on failure");
    /* decode: ids out of range and wrong dtype */
    int64_t shape[1] = {3};
    int64_t v[3] = {97, ewb_tokenizer_vocab_size(tk), 98};
    ewb_tensor *ids = NULL, *f = NULL;
    OK(ewb_tensor_from_data(&ids, EWB_DTYPE_I64, 1, shape, v));
    int64_t need;
    FAILS(ewb_tokenizer_decode(tk, ids, 0, NULL, 0, &need), "out of range for a vocabulary");
    OK(ewb_tensor_new(&f, EWB_DTYPE_F32, 1, shape));
    FAILS(ewb_tokenizer_decode(tk, f, 0, NULL, 0, &need), "ids must be i64 or i32");
    ewb_tensor_free(ids);
    FAILS(ewb_tokenizer_encode(tk, "x", 1, 64, &ids), "unknown flags");
    CHECK(ids == NULL, "no output on failure");
    ewb_tensor_free(f);
    /* i32 ids and a strided view decode too */
    int32_t w[4] = {'a', 'b', 'c', 'd'};
    int64_t s2[2] = {2, 2};
    ewb_tensor *t32 = NULL, *tr = NULL;
    OK(ewb_tensor_from_data(&t32, EWB_DTYPE_I32, 2, s2, w));
    OK(ewb_transpose(t32, 0, 1, &tr));
    char out[8];
    OK(ewb_tokenizer_decode(tk, tr, 0, out, 8, &need));
    CHECK(need == 4 && memcmp(out, "acbd", 4) == 0, "transposed i32 ids decode in row-major order");
    ewb_tensor_free(t32);
    ewb_tensor_free(tr);
}

int main(void) {
    test_pretokenize_gpt2();
    test_merges_by_hand();

    double mb = 2.0;
#ifdef __SANITIZE_ADDRESS__
    mb = 0.5;
#endif
    if (getenv("ECGWB_TOKENIZER_MB")) mb = atof(getenv("ECGWB_TOKENIZER_MB"));
    corpus c = make_corpus((int64_t)(mb * 1e6));
    ewb_tokenizer *tk = NULL;
    OK(ewb_tokenizer_new(&tk, SPECIALS, 5));
    double t0 = ewb_now();
    OK(ewb_tokenizer_train(tk, (const char *const *)c.t, c.len, c.n, 1000));
    double t_train = ewb_now() - t0;
    CHECK(ewb_tokenizer_vocab_size(tk) == 1000, "vocab 1000, got %lld", (long long)ewb_tokenizer_vocab_size(tk));

    /* deterministic: a second training gives the same merges */
    ewb_tokenizer *tk2 = NULL;
    OK(ewb_tokenizer_new(&tk2, SPECIALS, 5));
    int64_t half = c.n / 4;
    OK(ewb_tokenizer_train(tk2, (const char *const *)c.t, c.len, half, 1000)); /* retraining replaces this */
    OK(ewb_tokenizer_train(tk2, (const char *const *)c.t, c.len, c.n, 1000));
    int same = ewb_tokenizer_num_merges(tk2) == ewb_tokenizer_num_merges(tk);
    for (int64_t i = 0; same && i < ewb_tokenizer_num_merges(tk); i++) {
        int64_t a, b, a2, b2;
        ewb_tokenizer_merge(tk, i, &a, &b);
        ewb_tokenizer_merge(tk2, i, &a2, &b2);
        same = a == a2 && b == b2;
    }
    CHECK(same, "training is deterministic");
    ewb_tokenizer_free(tk2);

    /* compression on held-out reports */
    corpus held = make_corpus(200000);
    t0 = ewb_now();
    int64_t ntok = 0, nbytes = 0;
    for (int64_t i = 0; i < c.n; i++) {
        ewb_tensor *ids = NULL;
        OK(ewb_tokenizer_encode(tk, c.t[i], c.len[i], 0, &ids));
        ewb_tensor_free(ids);
    }
    double t_enc = ewb_now() - t0;
    for (int64_t i = 0; i < held.n; i++) {
        ewb_tensor *ids = NULL;
        OK(ewb_tokenizer_encode(tk, held.t[i], held.len[i], 0, &ids));
        ntok += ids ? ewb_tensor_numel(ids) : 0;
        nbytes += held.len[i];
        ewb_tensor_free(ids);
    }
    double ratio = (double)nbytes / (double)(ntok ? ntok : 1);
    CHECK(ratio > 2.0, "compression %.2f bytes/token <= 2", ratio);
    fprintf(stderr,
            "corpus %.2f MB (%lld reports): train %.2f s (%.1f MB/s) to 1000 tokens; encode %.1f MB/s; held-out "
            "%.2f bytes/token\n",
            c.all.n / 1e6, (long long)c.n, t_train, c.all.n / 1e6 / t_train, c.all.n / 1e6 / t_enc, ratio);

    test_round_trip(tk);
    test_against_naive(tk, &c);
    test_specials(tk);
    test_batch(tk);
    test_errors(tk);
    test_save_load(tk, &c);
    ewb_tokenizer_free(tk);
    corpus_free(&c);
    corpus_free(&held);
    return check_report();
}
