/* tokenizer.c: a byte-level BPE tokenizer (GPT-2 style), trained in C.
 *
 * Pipeline. encode(text):
 *   1. special tokens: at each position the longest special string that
 *      matches is one token (unless EWB_TOK_NO_SPECIAL); the text between
 *      specials is a segment, treated as a whole text by the next steps;
 *   2. pre-tokenisation splits a segment into words (below);
 *   3. each word starts as its bytes (ids 0..255) and the learned merges are
 *      applied lowest rank first, every occurrence left to right, until no
 *      adjacent pair has a merge (GPT-2's bpe()). Short words scan for the
 *      lowest-ranked pair; long ones use a min-heap of (rank, position) over
 *      a linked list of symbols: O(n log n) in the word's length, so a
 *      megabyte "word" of random bytes is fine.
 * Training counts the words of the corpus (split exactly as encode splits),
 * then repeatedly merges the most frequent adjacent pair over the unique
 * words weighted by their counts. Ties go to the smaller (left id, right id).
 * Pair counts are kept in a hash map and updated incrementally: each pair
 * knows the words it occurs in, so a merge only revisits those words, and a
 * max-heap with lazy deletion finds the best pair (an entry whose count is
 * stale is re-pushed with the current count; counts of pairs not involving
 * the new token only ever fall, so stale entries are upper bounds).
 *
 * Pre-tokenisation: GPT-2's regex, implemented by hand,
 *     's|'t|'re|'ve|'m|'ll|'d | ?L+ | ?N+ | ?P+ | S+(?!\S) | S+
 * tried in that order at each position (leftmost-longest as the regex
 * engine does it):
 *   - contractions: an ASCII apostrophe then s, t, m, d, re, ve or ll
 *     (lower case only, as in GPT-2);
 *   - a run of letters (L), digits (N) or "other" characters (P), each with
 *     at most one leading space (U+0020 only);
 *   - a run of whitespace (S): if more than one whitespace character is
 *     followed by a non-space, the last one is left for the next word, so
 *     "a   b" gives "a", "  ", " b"; a single one stands alone ("\n").
 * Character classes come from UTF-8 decoding (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF). An invalid byte is one P character of
 * its own, so any byte string is accepted. The classes approximate Unicode's
 * \s, \p{N} and \p{L} with a small table (uclass below): S is White_Space;
 * N is the ASCII digits, ¹²³¼½¾, the super/subscript digits, number forms,
 * circled numbers and a few other decimal digit blocks; P is controls,
 * Latin-1 punctuation and symbols, × ÷, combining marks, the punctuation and
 * format and symbol blocks U+200B–U+2BFF, U+2E00–U+2E7F, U+3000–U+303F, private use,
 * variation selectors, the BOM, fullwidth ASCII punctuation, emoji (U+1F000–U+1FAFF)
 * and tags; every other code point is a letter (L). The classes only decide
 * word boundaries; the round trip is exact whatever they say.
 *
 * File format (ewb_tokenizer_save), UTF-8/ASCII text, '\n' line ends:
 *     ecgwb-bpe 1
 *     specials <S>
 *     <special 0>                 one per line, escaped: bytes outside '!'..'~'
 *     ...                         and '\' are written \xHH (two hex digits)
 *     merges <M>
 *     <left> <right>              merge i, decimal ids, token 256 + i
 *     ...
 *     checksum <16 hex digits>    FNV-1a 64 of every byte before this line
 * Loading checks everything: the magic, the counts, ids of merge i below
 * 256 + i, no repeated pair, distinct specials, the checksum, and nothing after it.
 */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_L = 0, C_N = 1, C_P = 2, C_S = 3 };
enum { MAX_VOCAB = 1 << 24 };

/* ------------------------------------------------------------ small helpers */

/* grows *p to hold at least need elements of size elem; 0 or -1 (OOM) */
static int grow(void *pp, int64_t *cap, int64_t need, size_t elem) {
    void **p = (void **)pp;
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static uint64_t fnv1a(const void *data, int64_t n, uint64_t h) {
    const unsigned char *s = data;
    for (int64_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}
static const uint64_t FNV_BASIS = 0xcbf29ce484222325ULL;

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* hash map from a pair of ids (packed in 64 bits) to an int32 value; open
   addressing, linear probing, capacity a power of two, load <= 1/2 */
typedef struct {
    uint64_t *keys; /* PMAP_EMPTY where free */
    int32_t *vals;
    int64_t cap, n;
} pmap;
static const uint64_t PMAP_EMPTY = ~0ULL;

static inline uint64_t pkey(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static int32_t pmap_get(const pmap *m, uint64_t k) {
    if (!m->cap) return -1;
    uint64_t mask = (uint64_t)m->cap - 1;
    for (uint64_t i = mix64(k) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == k) return m->vals[i];
        if (m->keys[i] == PMAP_EMPTY) return -1;
    }
}
static void pmap_insert_nogrow(pmap *m, uint64_t k, int32_t v) {
    uint64_t mask = (uint64_t)m->cap - 1;
    uint64_t i = mix64(k) & mask;
    while (m->keys[i] != PMAP_EMPTY && m->keys[i] != k) i = (i + 1) & mask;
    if (m->keys[i] == PMAP_EMPTY) m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
}
static int pmap_put(pmap *m, uint64_t k, int32_t v) {
    if (2 * (m->n + 1) > m->cap) {
        int64_t cap = m->cap ? 2 * m->cap : 1024;
        pmap nm = {malloc(sizeof(uint64_t) * cap), malloc(sizeof(int32_t) * cap), cap, 0};
        if (!nm.keys || !nm.vals) { free(nm.keys); free(nm.vals); return -1; }
        memset(nm.keys, 0xff, sizeof(uint64_t) * cap);
        for (int64_t i = 0; i < m->cap; i++)
            if (m->keys[i] != PMAP_EMPTY) pmap_insert_nogrow(&nm, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = nm;
    }
    pmap_insert_nogrow(m, k, v);
    return 0;
}
static void pmap_free(pmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* --------------------------------------------------- UTF-8 and char classes */

/* decodes one UTF-8 character at s (n > 0 bytes left): its code point, or -1
   for an invalid byte (then *len = 1) */
static int32_t utf8_decode(const unsigned char *s, int64_t n, int *len) {
    unsigned c = s[0];
    *len = 1;
    if (c < 0x80) return (int32_t)c;
    int k;
    int32_t cp;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 2; cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        if (c == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3; cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;      /* <= U+10FFFF */
    } else return -1;
    if (n < k + 1) return -1;
    for (int i = 1; i <= k; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
        cp = cp << 6 | (int32_t)(b & 0x3F);
    }
    *len = k + 1;
    return cp;
}

static int uclass(int32_t cp) {
    if (cp < 0) return C_P; /* invalid byte */
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return C_L;
        if (cp >= '0' && cp <= '9') return C_N;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return C_S; /* \t \n \v \f \r space */
        return C_P;
    }
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return C_S;
    if (cp < 0xC0) {
        if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return C_L;
        if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE)) return C_N;
        return C_P;
    }
    if (cp == 0xD7 || cp == 0xF7) return C_P;
    if (cp >= 0x0300 && cp <= 0x036F) return C_P; /* combining marks */
    if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06F0 && cp <= 0x06F9) || (cp >= 0x0966 && cp <= 0x096F) ||
        (cp >= 0xFF10 && cp <= 0xFF19))
        return C_N;
    if (cp >= 0x200B && cp <= 0x2BFF) { /* format chars (ZWJ...), punctuation, symbols */
        if (cp == 0x2070 || (cp >= 0x2074 && cp <= 0x2079) || (cp >= 0x2080 && cp <= 0x2089)) return C_N;
        if (cp == 0x2071 || cp == 0x207F || (cp >= 0x2090 && cp <= 0x209C)) return C_L;
        if ((cp >= 0x2150 && cp <= 0x2189) || (cp >= 0x2460 && cp <= 0x249B) || (cp >= 0x24EA && cp <= 0x24FF))
            return C_N;
        return C_P;
    }
    if ((cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xE000 && cp <= 0xF8FF) ||
        (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
        (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) || (cp >= 0xFFF0 && cp <= 0xFFFF) || cp == 0xFEFF ||
        (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0xE0000 && cp <= 0xE007F) || cp >= 0xF0000)
        return C_P;
    return C_L;
}

static inline int char_class(const unsigned char *s, int64_t n, int *len) {
    unsigned c = s[0];
    if (c < 0x80) { /* fast path: uclass's ASCII rules */
        *len = 1;
        if ((c | 0x20) - 'a' < 26u) return C_L;
        if (c - '0' < 10u) return C_N;
        if (c == ' ' || c - 0x09 < 5u) return C_S;
        return C_P;
    }
    return uclass(utf8_decode(s, n, len));
}

/* the length of the word that starts at s[p] (p < n); see the top comment */
static int64_t pretok_next(const unsigned char *s, int64_t p, int64_t n) {
    if (s[p] == '\'' && p + 1 < n) {
        unsigned c = s[p + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
        if (p + 2 < n) {
            unsigned d = s[p + 2];
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
        }
    }
    int len;
    int cls = char_class(s + p, n - p, &len);
    int64_t q = p + len;
    if (cls == C_S) {
        if (s[p] == ' ' && q < n) { /* " ?X+": a space before a non-space joins its run */
            int l2;
            int c2 = char_class(s + q, n - q, &l2);
            if (c2 != C_S) {
                cls = c2;
                q += l2;
                goto run;
            }
        }
        int64_t last = p; /* start of the last whitespace character */
        while (q < n) {
            int l;
            if (char_class(s + q, n - q, &l) != C_S) break;
            last = q;
            q += l;
        }
        if (q < n && last > p) return last - p; /* S+(?!\S) backs off one */
        return q - p;
    }
run:
    while (q < n) {
        int l;
        if (char_class(s + q, n - q, &l) != cls) break;
        q += l;
    }
    return q - p;
}

int ewb_pretokenize(const char *text, int64_t len, int64_t *ends, int64_t cap, int64_t *n) {
    if (!n) return ewb_error("pretokenize: n (the output count) is NULL");
    if (!text && len != 0) return ewb_error("pretokenize: text is NULL");
    if (len < 0) len = (int64_t)strlen(text);
    const unsigned char *s = (const unsigned char *)text;
    int64_t k = 0;
    for (int64_t p = 0; p < len;) {
        p += pretok_next(s, p, len);
        if (ends && k < cap) ends[k] = p;
        k++;
    }
    *n = k;
    return 0;
}

/* ------------------------------------------------------------ the tokenizer */

struct ewb_tokenizer {
    int64_t nmerges;
    int32_t *merges;        /* (nmerges, 2): left, right */
    int64_t nspecial;
    char **special;         /* (nspecial) NUL-terminated copies */
    int64_t *special_len;
    /* derived by rebuild() */
    int64_t ntok;           /* 256 + nmerges + nspecial */
    int64_t *tok_off;       /* (ntok + 1) offsets into tok_bytes */
    char *tok_bytes;
    pmap rank;              /* (left, right) -> merge index */
    int32_t *byte_rank;     /* (256, 256): merge index of a pair of bytes, -1 if none */
    int32_t *strtab;        /* open addressing: token bytes -> lowest id, -1 free */
    int64_t strcap;
    int64_t *spec_order;    /* special indices, longest first */
    unsigned char spec_first[256]; /* 1 for the first bytes of specials */
    int64_t pad_id, bos_id, eos_id; /* -1 if absent */
};

static int64_t special_index(const ewb_tokenizer *tk, const char *s, int64_t len) {
    for (int64_t i = 0; i < tk->nspecial; i++)
        if (tk->special_len[i] == len && memcmp(tk->special[i], s, (size_t)len) == 0) return i;
    return -1;
}

/* recomputes the token bytes, the merge ranks, the string table and the
   special-token tables from merges and specials */
static int rebuild(ewb_tokenizer *tk) {
    int64_t ntok = 256 + tk->nmerges + tk->nspecial;
    int64_t total = 256;
    int64_t *off = malloc(sizeof(int64_t) * (ntok + 1));
    if (!off) return ewb_error("tokenizer: out of memory");
    for (int64_t i = 0; i <= 256; i++) off[i] = i;
    for (int64_t i = 0; i < tk->nmerges; i++) {
        int32_t a = tk->merges[2 * i], b = tk->merges[2 * i + 1];
        total += (off[a + 1] - off[a]) + (off[b + 1] - off[b]);
        off[256 + i + 1] = total;
    }
    for (int64_t i = 0; i < tk->nspecial; i++) {
        total += tk->special_len[i];
        off[256 + tk->nmerges + i + 1] = total;
    }
    char *bytes = malloc((size_t)(total ? total : 1));
    int64_t strcap = 16;
    while (strcap < 2 * ntok) strcap *= 2;
    int32_t *strtab = malloc(sizeof(int32_t) * strcap);
    int64_t *order = malloc(sizeof(int64_t) * (tk->nspecial ? tk->nspecial : 1));
    int32_t *byte_rank = malloc(sizeof(int32_t) * 65536);
    pmap rank = {0};
    if (!bytes || !strtab || !order || !byte_rank) goto oom;
    for (int i = 0; i < 65536; i++) byte_rank[i] = -1;
    for (int i = 0; i < 256; i++) bytes[i] = (char)i;
    for (int64_t i = 0; i < tk->nmerges; i++) {
        int32_t a = tk->merges[2 * i], b = tk->merges[2 * i + 1];
        char *dst = bytes + off[256 + i];
        memcpy(dst, bytes + off[a], (size_t)(off[a + 1] - off[a]));
        memcpy(dst + (off[a + 1] - off[a]), bytes + off[b], (size_t)(off[b + 1] - off[b]));
        if (pmap_put(&rank, pkey(a, b), (int32_t)i)) goto oom;
        if (a < 256 && b < 256) byte_rank[a * 256 + b] = (int32_t)i;
    }
    for (int64_t i = 0; i < tk->nspecial; i++)
        memcpy(bytes + off[256 + tk->nmerges + i], tk->special[i], (size_t)tk->special_len[i]);
    /* string table: ids in increasing order, so the lowest id of equal strings wins */
    for (int64_t i = 0; i < strcap; i++) strtab[i] = -1;
    for (int64_t id = 0; id < ntok; id++) {
        int64_t len = off[id + 1] - off[id];
        uint64_t mask = (uint64_t)strcap - 1;
        uint64_t h = fnv1a(bytes + off[id], len, FNV_BASIS) & mask;
        for (;; h = (h + 1) & mask) {
            int32_t j = strtab[h];
            if (j < 0) { strtab[h] = (int32_t)id; break; }
            if (off[j + 1] - off[j] == len && memcmp(bytes + off[j], bytes + off[id], (size_t)len) == 0) break;
        }
    }
    /* specials, longest first (ties: earlier first) */
    memset(tk->spec_first, 0, sizeof tk->spec_first);
    for (int64_t i = 0; i < tk->nspecial; i++) {
        int64_t j = i;
        while (j > 0 && tk->special_len[order[j - 1]] < tk->special_len[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        tk->spec_first[(unsigned char)tk->special[i][0]] = 1;
    }
    free(tk->tok_off);
    free(tk->tok_bytes);
    free(tk->strtab);
    free(tk->spec_order);
    free(tk->byte_rank);
    pmap_free(&tk->rank);
    tk->byte_rank = byte_rank;
    tk->ntok = ntok;
    tk->tok_off = off;
    tk->tok_bytes = bytes;
    tk->strtab = strtab;
    tk->strcap = strcap;
    tk->spec_order = order;
    tk->rank = rank;
    int64_t base = 256 + tk->nmerges, k;
    tk->pad_id = (k = special_index(tk, "<pad>", 5)) >= 0 ? base + k : -1;
    tk->bos_id = (k = special_index(tk, "<bos>", 5)) >= 0 ? base + k : -1;
    tk->eos_id = (k = special_index(tk, "<eos>", 5)) >= 0 ? base + k : -1;
    return 0;
oom:
    free(off);
    free(bytes);
    free(strtab);
    free(order);
    free(byte_rank);
    pmap_free(&rank);
    return ewb_error("tokenizer: out of memory");
}

void ewb_tokenizer_free(ewb_tokenizer *tk) {
    if (!tk) return;
    for (int64_t i = 0; i < tk->nspecial; i++) free(tk->special[i]);
    free(tk->special);
    free(tk->special_len);
    free(tk->merges);
    free(tk->tok_off);
    free(tk->tok_bytes);
    free(tk->strtab);
    free(tk->spec_order);
    free(tk->byte_rank);
    pmap_free(&tk->rank);
    free(tk);
}

/* appends a special without rebuilding */
static int push_special(ewb_tokenizer *tk, const char *op, const char *s, int64_t len) {
    if (len <= 0) return ewb_error("%s: a special token must not be empty", op);
    if (special_index(tk, s, len) >= 0) return ewb_error("%s: special token '%s' given twice", op, s);
    if (256 + tk->nmerges + tk->nspecial + 1 > MAX_VOCAB)
        return ewb_error("%s: vocabulary would exceed %d tokens", op, MAX_VOCAB);
    char **sp = realloc(tk->special, sizeof(char *) * (tk->nspecial + 1));
    if (!sp) return ewb_error("%s: out of memory", op);
    tk->special = sp;
    int64_t *sl = realloc(tk->special_len, sizeof(int64_t) * (tk->nspecial + 1));
    if (!sl) return ewb_error("%s: out of memory", op);
    tk->special_len = sl;
    char *c = malloc((size_t)len + 1);
    if (!c) return ewb_error("%s: out of memory", op);
    memcpy(c, s, (size_t)len);
    c[len] = 0;
    tk->special[tk->nspecial] = c;
    tk->special_len[tk->nspecial] = len;
    tk->nspecial++;
    return 0;
}

int ewb_tokenizer_new(ewb_tokenizer **out, const char *const *specials, int64_t n) {
    if (!out) return ewb_error("tokenizer_new: out is NULL");
    *out = NULL;
    if (n < 0) return ewb_error("tokenizer_new: negative number of special tokens %lld", (long long)n);
    if (n > 0 && !specials) return ewb_error("tokenizer_new: specials is NULL for %lld special tokens", (long long)n);
    ewb_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) return ewb_error("tokenizer_new: out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (!specials[i]) { ewb_tokenizer_free(tk); return ewb_error("tokenizer_new: special token %lld is NULL", (long long)i); }
        if (push_special(tk, "tokenizer_new", specials[i], (int64_t)strlen(specials[i]))) {
            ewb_tokenizer_free(tk);
            return -1;
        }
    }
    if (rebuild(tk)) { ewb_tokenizer_free(tk); return -1; }
    *out = tk;
    return 0;
}

int ewb_tokenizer_add_special(ewb_tokenizer *tk, const char *s, int64_t *id) {
    if (!tk) return ewb_error("tokenizer_add_special: tokenizer is NULL");
    if (!s) return ewb_error("tokenizer_add_special: string is NULL");
    EWB_TRY(push_special(tk, "tokenizer_add_special", s, (int64_t)strlen(s)));
    if (rebuild(tk)) { /* undo, so the tokenizer stays consistent */
        tk->nspecial--;
        free(tk->special[tk->nspecial]);
        return -1;
    }
    if (id) *id = tk->ntok - 1;
    return 0;
}

int64_t ewb_tokenizer_vocab_size(const ewb_tokenizer *tk) { return tk ? tk->ntok : -1; }
int64_t ewb_tokenizer_num_merges(const ewb_tokenizer *tk) { return tk ? tk->nmerges : -1; }
int64_t ewb_tokenizer_num_specials(const ewb_tokenizer *tk) { return tk ? tk->nspecial : -1; }

int ewb_tokenizer_merge(const ewb_tokenizer *tk, int64_t i, int64_t *left, int64_t *right) {
    if (!tk) return ewb_error("tokenizer_merge: tokenizer is NULL");
    if (i < 0 || i >= tk->nmerges)
        return ewb_error("tokenizer_merge: merge %lld out of range (%lld merges)", (long long)i, (long long)tk->nmerges);
    if (left) *left = tk->merges[2 * i];
    if (right) *right = tk->merges[2 * i + 1];
    return 0;
}

int ewb_tokenizer_special_id(const ewb_tokenizer *tk, const char *s, int64_t *id) {
    if (!tk) return ewb_error("tokenizer_special_id: tokenizer is NULL");
    if (!s) return ewb_error("tokenizer_special_id: string is NULL");
    int64_t k = special_index(tk, s, (int64_t)strlen(s));
    if (k < 0) return ewb_error("tokenizer: unknown special token '%s' (%lld specials)", s, (long long)tk->nspecial);
    if (id) *id = 256 + tk->nmerges + k;
    return 0;
}

int ewb_tokenizer_token(const ewb_tokenizer *tk, int64_t id, const char **bytes, int64_t *len) {
    if (!tk) return ewb_error("tokenizer_token: tokenizer is NULL");
    if (id < 0 || id >= tk->ntok)
        return ewb_error("tokenizer_token: id %lld out of range for a vocabulary of %lld", (long long)id, (long long)tk->ntok);
    if (bytes) *bytes = tk->tok_bytes + tk->tok_off[id];
    if (len) *len = tk->tok_off[id + 1] - tk->tok_off[id];
    return 0;
}

int64_t ewb_tokenizer_token_id(const ewb_tokenizer *tk, const char *bytes, int64_t len) {
    if (!tk || (!bytes && len > 0) || len < 0) return -1;
    uint64_t mask = (uint64_t)tk->strcap - 1;
    for (uint64_t h = fnv1a(bytes, len, FNV_BASIS) & mask;; h = (h + 1) & mask) {
        int32_t j = tk->strtab[h];
        if (j < 0) return -1;
        int64_t o = tk->tok_off[j];
        if (tk->tok_off[j + 1] - o == len && memcmp(tk->tok_bytes + o, bytes, (size_t)len) == 0) return j;
    }
}

/* the special that starts at s[p], longest first; -1 if none */
static int64_t special_at(const ewb_tokenizer *tk, const unsigned char *s, int64_t p, int64_t n) {
    if (!tk->spec_first[s[p]]) return -1;
    for (int64_t k = 0; k < tk->nspecial; k++) {
        int64_t i = tk->spec_order[k], l = tk->special_len[i];
        if (l <= n - p && memcmp(s + p, tk->special[i], (size_t)l) == 0) return i;
    }
    return -1;
}

/* the end of the plain segment starting at p: the next special's start, or n */
static int64_t segment_end(const ewb_tokenizer *tk, const unsigned char *s, int64_t p, int64_t n, int specials) {
    if (!specials || tk->nspecial == 0) return n;
    for (; p < n; p++)
        if (tk->spec_first[s[p]] && special_at(tk, s, p, n) >= 0) return p;
    return n;
}

/* ------------------------------------------------------------------ training */

typedef struct { int32_t *w; int64_t n, cap; } wlist; /* words a pair occurs in */
typedef struct { int64_t count; int32_t pid; } hent;   /* heap entry */

typedef struct {
    /* unique words */
    int64_t nw, wcap;
    int64_t *wcount;       /* (nw) occurrences */
    int64_t *woff;         /* (nw) offset of the word's bytes in text, then of its symbols in sym */
    int32_t *wlen;         /* (nw) bytes, then symbols */
    uint64_t *whash;
    const unsigned char **wsrc; /* (nw) where the first occurrence's bytes are */
    int32_t *wtab;         /* open addressing: word index, -1 free */
    int64_t wtcap;
    int32_t *sym;          /* all words' symbols */
    /* pairs */
    pmap pid;              /* (a, b) -> pair id */
    int64_t np, pcap;
    int32_t *pa, *pb;      /* (np) */
    int64_t *pcount;
    wlist *pw;
    int64_t *pstamp;       /* last merge that pushed the pair */
    hent *heap;
    int64_t nh, hcap;
    int32_t *zl;           /* pairs made by the current merge */
    int64_t nz, zcap;
    int64_t *wstamp;       /* (nw) last merge that visited the word */
} trainer;

static int word_add(trainer *t, const unsigned char *s, int64_t len) {
    if (len > INT32_MAX) return ewb_error("tokenizer_train: a word of %lld bytes is too long", (long long)len);
    uint64_t h = fnv1a(s, len, FNV_BASIS);
    if (2 * (t->nw + 1) > t->wtcap) {
        int64_t cap = t->wtcap ? 2 * t->wtcap : 4096;
        int32_t *tab = malloc(sizeof(int32_t) * cap);
        if (!tab) return ewb_error("tokenizer_train: out of memory");
        for (int64_t i = 0; i < cap; i++) tab[i] = -1;
        for (int64_t w = 0; w < t->nw; w++) {
            uint64_t i = t->whash[w] & (uint64_t)(cap - 1);
            while (tab[i] >= 0) i = (i + 1) & (uint64_t)(cap - 1);
            tab[i] = (int32_t)w;
        }
        free(t->wtab);
        t->wtab = tab;
        t->wtcap = cap;
    }
    uint64_t mask = (uint64_t)t->wtcap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        int32_t w = t->wtab[i];
        if (w < 0) break;
        if (t->whash[w] == h && t->wlen[w] == len && memcmp(t->wsrc[w], s, (size_t)len) == 0) {
            t->wcount[w]++;
            return 0;
        }
    }
    if (t->nw >= INT32_MAX) return ewb_error("tokenizer_train: too many distinct words");
    int64_t c1 = t->wcap, c2 = t->wcap, c3 = t->wcap, c4 = t->wcap, c5 = t->wcap;
    if (grow(&t->wcount, &c1, t->nw + 1, sizeof(int64_t)) || grow(&t->woff, &c2, t->nw + 1, sizeof(int64_t)) ||
        grow(&t->wlen, &c3, t->nw + 1, sizeof(int32_t)) || grow(&t->whash, &c4, t->nw + 1, sizeof(uint64_t)) ||
        grow(&t->wsrc, &c5, t->nw + 1, sizeof(void *)))
        return ewb_error("tokenizer_train: out of memory");
    t->wcap = c1;
    int64_t w = t->nw++;
    t->wcount[w] = 1;
    t->wlen[w] = (int32_t)len;
    t->whash[w] = h;
    t->wsrc[w] = s;
    t->wtab[i] = (int32_t)w;
    return 0;
}

static int32_t pair_id(trainer *t, int32_t a, int32_t b) {
    uint64_t k = pkey(a, b);
    int32_t id = pmap_get(&t->pid, k);
    if (id >= 0) return id;
    if (t->np >= INT32_MAX) { ewb_error("tokenizer_train: too many pairs"); return -1; }
    int64_t c1 = t->pcap, c2 = t->pcap, c3 = t->pcap, c4 = t->pcap, c5 = t->pcap;
    if (grow(&t->pa, &c1, t->np + 1, sizeof(int32_t)) || grow(&t->pb, &c2, t->np + 1, sizeof(int32_t)) ||
        grow(&t->pcount, &c3, t->np + 1, sizeof(int64_t)) || grow(&t->pw, &c4, t->np + 1, sizeof(wlist)) ||
        grow(&t->pstamp, &c5, t->np + 1, sizeof(int64_t))) {
        ewb_error("tokenizer_train: out of memory");
        return -1;
    }
    t->pcap = c1;
    id = (int32_t)t->np++;
    t->pa[id] = a;
    t->pb[id] = b;
    t->pcount[id] = 0;
    t->pw[id] = (wlist){0};
    t->pstamp[id] = -1;
    if (pmap_put(&t->pid, k, id)) { ewb_error("tokenizer_train: out of memory"); return -1; }
    return id;
}

static int wlist_add(wlist *l, int32_t w) {
    if (l->n && l->w[l->n - 1] == w) return 0;
    if (grow(&l->w, &l->cap, l->n + 1, sizeof(int32_t))) return ewb_error("tokenizer_train: out of memory");
    l->w[l->n++] = w;
    return 0;
}

/* heap order: larger count first, then smaller (a, b) */
static inline int hbefore(const trainer *t, hent x, hent y) {
    if (x.count != y.count) return x.count > y.count;
    if (t->pa[x.pid] != t->pa[y.pid]) return t->pa[x.pid] < t->pa[y.pid];
    return t->pb[x.pid] < t->pb[y.pid];
}
static int heap_push(trainer *t, int64_t count, int32_t pid) {
    if (grow(&t->heap, &t->hcap, t->nh + 1, sizeof(hent))) return ewb_error("tokenizer_train: out of memory");
    hent e = {count, pid};
    int64_t i = t->nh++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (!hbefore(t, e, t->heap[up])) break;
        t->heap[i] = t->heap[up];
        i = up;
    }
    t->heap[i] = e;
    return 0;
}
static hent heap_pop(trainer *t) {
    hent top = t->heap[0], e = t->heap[--t->nh];
    int64_t i = 0, n = t->nh;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hbefore(t, t->heap[c + 1], t->heap[c])) c++;
        if (!hbefore(t, t->heap[c], e)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = e;
    return top;
}

static void trainer_free(trainer *t) {
    free(t->wcount); free(t->woff); free(t->wlen); free(t->whash); free(t->wsrc); free(t->wtab);
    free(t->sym);
    pmap_free(&t->pid);
    for (int64_t i = 0; i < t->np; i++) free(t->pw[i].w);
    free(t->pa); free(t->pb); free(t->pcount); free(t->pw); free(t->pstamp);
    free(t->heap); free(t->zl); free(t->wstamp);
}

/* merges pair (a, b) into z in word w, updating the pair counts */
static int merge_word(trainer *t, int64_t w, int32_t a, int32_t b, int32_t z, int64_t m) {
    int32_t *s = t->sym + t->woff[w];
    int32_t n = t->wlen[w];
    int64_t c = t->wcount[w];
    int found = 0;
    for (int32_t i = 0; i + 1 < n && !found; i++) found = s[i] == a && s[i + 1] == b;
    if (!found) return 0; /* stale entry: an earlier merge took the pair */
    for (int32_t i = 0; i + 1 < n; i++) t->pcount[pmap_get(&t->pid, pkey(s[i], s[i + 1]))] -= c;
    int32_t j = 0;
    for (int32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) { s[j++] = z; i += 2; }
        else s[j++] = s[i++];
    }
    t->wlen[w] = j;
    for (int32_t i = 0; i + 1 < j; i++) {
        int32_t p = pair_id(t, s[i], s[i + 1]);
        if (p < 0) return -1;
        t->pcount[p] += c;
        if (s[i] == z || s[i + 1] == z) {
            EWB_TRY(wlist_add(&t->pw[p], (int32_t)w));
            if (t->pstamp[p] != m) {
                t->pstamp[p] = m;
                if (grow(&t->zl, &t->zcap, t->nz + 1, sizeof(int32_t))) return ewb_error("tokenizer_train: out of memory");
                t->zl[t->nz++] = p;
            }
        }
    }
    return 0;
}

static int train(ewb_tokenizer *tk, trainer *t, const char *const *texts, const int64_t *lens, int64_t ntext,
                 int64_t nmerges, int32_t **merges_out, int64_t *nmerges_out) {
    /* 1. unique words and their counts */
    int64_t total = 0;
    for (int64_t k = 0; k < ntext; k++) {
        const unsigned char *s = (const unsigned char *)texts[k];
        int64_t n = lens ? lens[k] : (int64_t)strlen(texts[k]);
        for (int64_t p = 0; p < n;) {
            int64_t sp = tk->nspecial ? special_at(tk, s, p, n) : -1;
            if (sp >= 0) { p += tk->special_len[sp]; continue; }
            int64_t e = segment_end(tk, s, p, n, 1);
            while (p < e) {
                int64_t l = pretok_next(s, p, e);
                EWB_TRY(word_add(t, s + p, l));
                p += l;
            }
        }
    }
    /* 2. symbols = bytes */
    for (int64_t w = 0; w < t->nw; w++) total += t->wlen[w];
    t->sym = malloc(sizeof(int32_t) * (total ? total : 1));
    t->wstamp = malloc(sizeof(int64_t) * (t->nw ? t->nw : 1));
    if (!t->sym || !t->wstamp) return ewb_error("tokenizer_train: out of memory");
    for (int64_t w = 0, o = 0; w < t->nw; w++) {
        for (int32_t i = 0; i < t->wlen[w]; i++) t->sym[o + i] = t->wsrc[w][i];
        t->woff[w] = o;
        o += t->wlen[w];
        t->wstamp[w] = -1;
    }
    /* 3. pair counts, the words of each pair, the heap */
    for (int64_t w = 0; w < t->nw; w++) {
        int32_t *s = t->sym + t->woff[w];
        for (int32_t i = 0; i + 1 < t->wlen[w]; i++) {
            int32_t p = pair_id(t, s[i], s[i + 1]);
            if (p < 0) return -1;
            t->pcount[p] += t->wcount[w];
            EWB_TRY(wlist_add(&t->pw[p], (int32_t)w));
        }
    }
    for (int32_t p = 0; p < t->np; p++) EWB_TRY(heap_push(t, t->pcount[p], p));
    /* 4. merges */
    int32_t *merges = malloc(sizeof(int32_t) * 2 * (nmerges ? nmerges : 1));
    if (!merges) return ewb_error("tokenizer_train: out of memory");
    *merges_out = merges;
    int64_t m = 0;
    while (m < nmerges && t->nh > 0) {
        hent e = heap_pop(t);
        int64_t cur = t->pcount[e.pid];
        if (cur != e.count) { /* stale: re-queue at the current count */
            if (cur > 0) EWB_TRY(heap_push(t, cur, e.pid));
            continue;
        }
        if (cur <= 0) continue;
        int32_t pid = e.pid, a = t->pa[pid], b = t->pb[pid], z = (int32_t)(256 + m);
        merges[2 * m] = a;
        merges[2 * m + 1] = b;
        t->nz = 0;
        for (int64_t i = 0; i < t->pw[pid].n; i++) {
            int32_t w = t->pw[pid].w[i];
            if (t->wstamp[w] == m) continue;
            t->wstamp[w] = m;
            EWB_TRY(merge_word(t, w, a, b, z, m));
        }
        free(t->pw[pid].w);
        t->pw[pid] = (wlist){0};
        for (int64_t i = 0; i < t->nz; i++)
            if (t->pcount[t->zl[i]] > 0) EWB_TRY(heap_push(t, t->pcount[t->zl[i]], t->zl[i]));
        m++;
    }
    *nmerges_out = m;
    return 0;
}

int ewb_tokenizer_train(ewb_tokenizer *tk, const char *const *texts, const int64_t *lens, int64_t n,
                        int64_t vocab_size) {
    if (!tk) return ewb_error("tokenizer_train: tokenizer is NULL");
    if (n < 0) return ewb_error("tokenizer_train: negative number of texts %lld", (long long)n);
    if (n > 0 && !texts) return ewb_error("tokenizer_train: texts is NULL for %lld texts", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (!texts[i] && !(lens && lens[i] == 0)) return ewb_error("tokenizer_train: text %lld is NULL", (long long)i);
        if (lens && lens[i] < 0) return ewb_error("tokenizer_train: text %lld has negative length %lld", (long long)i, (long long)lens[i]);
    }
    if (vocab_size < 256 + tk->nspecial)
        return ewb_error("tokenizer_train: vocab size %lld < 256 bytes + %lld special tokens", (long long)vocab_size,
                         (long long)tk->nspecial);
    if (vocab_size > MAX_VOCAB)
        return ewb_error("tokenizer_train: vocab size %lld > the maximum %d", (long long)vocab_size, MAX_VOCAB);
    trainer t = {0};
    int32_t *merges = NULL;
    int64_t m = 0;
    int rc = train(tk, &t, texts, lens, n, vocab_size - 256 - tk->nspecial, &merges, &m);
    trainer_free(&t);
    if (rc) { free(merges); return -1; }
    int32_t *old = tk->merges;
    int64_t oldn = tk->nmerges;
    tk->merges = merges;
    tk->nmerges = m;
    if (rebuild(tk)) {
        tk->merges = old;
        tk->nmerges = oldn;
        free(merges);
        return -1;
    }
    free(old);
    return 0;
}

/* ------------------------------------------------------------------ encoding */

typedef struct { int64_t *v; int64_t n, cap; } ivec;
typedef struct { int32_t rank; int32_t pos; } bent; /* encode heap: lower rank, then position, first */

typedef struct {
    int32_t *sym, *next, *prev;
    int64_t cap;
    bent *heap;
    int64_t hcap;
} scratch;

static int ivec_push(ivec *v, int64_t x) {
    if (grow(&v->v, &v->cap, v->n + 1, sizeof(int64_t))) return ewb_error("tokenizer_encode: out of memory");
    v->v[v->n++] = x;
    return 0;
}

static inline int bbefore(bent x, bent y) { return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos; }
static void bpush(bent *h, int64_t *n, bent e) {
    int64_t i = (*n)++;
    while (i > 0 && bbefore(e, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}
static bent bpop(bent *h, int64_t *n) {
    bent top = h[0], e = h[--*n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && bbefore(h[c + 1], h[c])) c++;
        if (!bbefore(h[c], e)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = e;
    return top;
}

/* BPE of one word (n bytes) appended to out. Words of up to SHORT_WORD bytes
   take the lowest-ranked pair by a linear scan (the leftmost on ties, which
   is the heap's order too); longer ones use the heap. */
enum { SHORT_WORD = 64 };
static int bpe_word(const ewb_tokenizer *tk, const unsigned char *s, int64_t n, ivec *out, scratch *sc) {
    if (n == 1 || tk->nmerges == 0) {
        for (int64_t i = 0; i < n; i++) EWB_TRY(ivec_push(out, s[i]));
        return 0;
    }
    if (n <= SHORT_WORD) { /* the same merges by a linear scan: no heap, no links */
        int32_t sym[SHORT_WORD], rk[SHORT_WORD]; /* rk[i]: rank of pair (i, i+1), INT32_MAX if none */
        int m = (int)n;
        for (int i = 0; i < m; i++) sym[i] = s[i];
        for (int i = 0; i + 1 < m; i++) {
            int32_t r = tk->byte_rank[s[i] * 256 + s[i + 1]];
            rk[i] = r >= 0 ? r : INT32_MAX;
        }
        for (;;) {
            int best = -1;
            int32_t br = INT32_MAX;
            for (int i = 0; i + 1 < m; i++)
                if (rk[i] < br) { br = rk[i]; best = i; }
            if (best < 0) break;
            sym[best] = 256 + br;
            for (int i = best + 1; i + 1 < m; i++) sym[i] = sym[i + 1];
            for (int i = best + 1; i + 2 < m; i++) rk[i] = rk[i + 1];
            m--;
            if (best + 1 < m) {
                int32_t r = pmap_get(&tk->rank, pkey(sym[best], sym[best + 1]));
                rk[best] = r >= 0 ? r : INT32_MAX;
            }
            if (best > 0) {
                int32_t r = pmap_get(&tk->rank, pkey(sym[best - 1], sym[best]));
                rk[best - 1] = r >= 0 ? r : INT32_MAX;
            }
        }
        for (int i = 0; i < m; i++) EWB_TRY(ivec_push(out, sym[i]));
        return 0;
    }
    if (n > INT32_MAX) return ewb_error("tokenizer_encode: a word of %lld bytes is too long", (long long)n);
    int64_t c1 = sc->cap, c2 = sc->cap, c3 = sc->cap;
    if (grow(&sc->sym, &c1, n, sizeof(int32_t)) || grow(&sc->next, &c2, n, sizeof(int32_t)) ||
        grow(&sc->prev, &c3, n, sizeof(int32_t)) || grow(&sc->heap, &sc->hcap, 3 * n, sizeof(bent)))
        return ewb_error("tokenizer_encode: out of memory");
    sc->cap = c1;
    int32_t *sym = sc->sym, *next = sc->next, *prev = sc->prev;
    int64_t nh = 0;
    for (int32_t i = 0; i < n; i++) {
        sym[i] = s[i];
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
    }
    for (int32_t i = 0; i + 1 < n; i++) {
        int32_t r = tk->byte_rank[s[i] * 256 + s[i + 1]];
        if (r >= 0) bpush(sc->heap, &nh, (bent){r, i});
    }
    while (nh > 0) {
        bent e = bpop(sc->heap, &nh);
        int32_t i = e.pos, j = next[i];
        /* valid only if i is alive and its pair with its neighbour is still this merge */
        if (sym[i] != tk->merges[2 * e.rank] || j < 0 || sym[j] != tk->merges[2 * e.rank + 1]) continue;
        sym[i] = 256 + e.rank;
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) {
            int32_t r = pmap_get(&tk->rank, pkey(sym[prev[i]], sym[i]));
            if (r >= 0) bpush(sc->heap, &nh, (bent){r, prev[i]});
        }
        if (next[i] >= 0) {
            int32_t r = pmap_get(&tk->rank, pkey(sym[i], sym[next[i]]));
            if (r >= 0) bpush(sc->heap, &nh, (bent){r, i});
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) EWB_TRY(ivec_push(out, sym[i]));
    return 0;
}

static int encode_into(const ewb_tokenizer *tk, const char *text, int64_t len, int flags, ivec *out, scratch *sc) {
    const unsigned char *s = (const unsigned char *)text;
    if (flags & EWB_TOK_BOS) {
        if (tk->bos_id < 0) return ewb_error("tokenizer_encode: EWB_TOK_BOS needs a special token '<bos>'");
        EWB_TRY(ivec_push(out, tk->bos_id));
    }
    int specials = !(flags & EWB_TOK_NO_SPECIAL) && tk->nspecial > 0;
    for (int64_t p = 0; p < len;) {
        int64_t sp = specials ? special_at(tk, s, p, len) : -1;
        if (sp >= 0) {
            EWB_TRY(ivec_push(out, 256 + tk->nmerges + sp));
            p += tk->special_len[sp];
            continue;
        }
        int64_t e = segment_end(tk, s, p + 1, len, specials); /* p itself is no special */
        while (p < e) {
            int64_t l = pretok_next(s, p, e);
            EWB_TRY(bpe_word(tk, s + p, l, out, sc));
            p += l;
        }
    }
    if (flags & EWB_TOK_EOS) {
        if (tk->eos_id < 0) return ewb_error("tokenizer_encode: EWB_TOK_EOS needs a special token '<eos>'");
        EWB_TRY(ivec_push(out, tk->eos_id));
    }
    return 0;
}

static void scratch_free(scratch *sc) {
    free(sc->sym);
    free(sc->next);
    free(sc->prev);
    free(sc->heap);
}

int ewb_tokenizer_encode(const ewb_tokenizer *tk, const char *text, int64_t len, int flags, ewb_tensor **out) {
    if (!out) return ewb_error("tokenizer_encode: out is NULL");
    *out = NULL;
    if (!tk) return ewb_error("tokenizer_encode: tokenizer is NULL");
    if (!text && len != 0) return ewb_error("tokenizer_encode: text is NULL");
    if (flags & ~(EWB_TOK_BOS | EWB_TOK_EOS | EWB_TOK_NO_SPECIAL))
        return ewb_error("tokenizer_encode: unknown flags 0x%x", flags);
    if (len < 0) len = (int64_t)strlen(text);
    ivec v = {0};
    scratch sc = {0};
    int rc = encode_into(tk, text, len, flags, &v, &sc);
    scratch_free(&sc);
    if (rc == 0) {
        int64_t shape[1] = {v.n};
        ewb_tensor *t = ewb_empty(EWB_DTYPE_I64, 1, shape);
        if (!t) rc = -1;
        else {
            if (v.n) memcpy(ewb_tensor_data(t), v.v, sizeof(int64_t) * v.n);
            *out = t;
        }
    }
    free(v.v);
    return rc;
}

int ewb_tokenizer_encode_batch(const ewb_tokenizer *tk, const char *const *texts, const int64_t *lens, int64_t n,
                               int64_t max_len, int flags, ewb_tensor **ids, ewb_tensor **mask) {
    if (!ids || !mask) return ewb_error("tokenizer_encode_batch: ids or mask out-pointer is NULL");
    *ids = *mask = NULL;
    if (!tk) return ewb_error("tokenizer_encode_batch: tokenizer is NULL");
    if (n < 0) return ewb_error("tokenizer_encode_batch: negative batch size %lld", (long long)n);
    if (n > 0 && !texts) return ewb_error("tokenizer_encode_batch: texts is NULL for %lld texts", (long long)n);
    if (flags & ~(EWB_TOK_BOS | EWB_TOK_EOS | EWB_TOK_NO_SPECIAL | EWB_TOK_PAD_LEFT))
        return ewb_error("tokenizer_encode_batch: unknown flags 0x%x", flags);
    for (int64_t i = 0; i < n; i++) {
        if (!texts[i] && !(lens && lens[i] == 0)) return ewb_error("tokenizer_encode_batch: text %lld is NULL", (long long)i);
        if (lens && lens[i] < 0)
            return ewb_error("tokenizer_encode_batch: text %lld has negative length %lld", (long long)i, (long long)lens[i]);
    }
    ivec *v = calloc((size_t)(n ? n : 1), sizeof(ivec));
    if (!v) return ewb_error("tokenizer_encode_batch: out of memory");
    scratch sc = {0};
    int rc = 0;
    int64_t T = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        rc = encode_into(tk, texts[i], lens ? lens[i] : (int64_t)strlen(texts[i]), flags & ~EWB_TOK_PAD_LEFT, &v[i], &sc);
        if (v[i].n > T) T = v[i].n;
    }
    scratch_free(&sc);
    if (max_len > 0) T = max_len;
    if (rc == 0) {
        int64_t shape[2] = {n, T};
        ewb_tensor *ti = ewb_empty(EWB_DTYPE_I64, 2, shape), *tm = ewb_empty(EWB_DTYPE_BOOL, 2, shape);
        if (!ti || !tm) {
            ewb_tensor_free(ti);
            ewb_tensor_free(tm);
            rc = -1;
        } else {
            int64_t *pi = ewb_tensor_data(ti), pad = tk->pad_id >= 0 ? tk->pad_id : 0;
            uint8_t *pm = ewb_tensor_data(tm);
            for (int64_t i = 0; i < n; i++) {
                int64_t k = v[i].n < T ? v[i].n : T, start = (flags & EWB_TOK_PAD_LEFT) ? T - k : 0;
                for (int64_t t = 0; t < T; t++) {
                    int in = t >= start && t < start + k;
                    pi[i * T + t] = in ? v[i].v[t - start] : pad;
                    pm[i * T + t] = (uint8_t)in;
                }
            }
            *ids = ti;
            *mask = tm;
        }
    }
    for (int64_t i = 0; i < n; i++) free(v[i].v);
    free(v);
    return rc;
}

int ewb_tokenizer_decode(const ewb_tokenizer *tk, const ewb_tensor *ids, int flags, char *buf, int64_t n,
                         int64_t *needed) {
    if (!tk) return ewb_error("tokenizer_decode: tokenizer is NULL");
    if (!needed) return ewb_error("tokenizer_decode: needed is NULL");
    EWB_TRY(ewb_check_alive("tokenizer_decode", ids));
    if (ids->dtype != EWB_DTYPE_I64 && ids->dtype != EWB_DTYPE_I32)
        return ewb_error("tokenizer_decode: ids must be i64 or i32, got %s", ewb_s(ids));
    if (flags & ~EWB_TOK_SKIP_SPECIAL) return ewb_error("tokenizer_decode: unknown flags 0x%x", flags);
    ewb_tensor *c = ewb_contig_or_self((ewb_tensor *)ids);
    if (!c) return -1;
    int64_t cnt = ewb_tensor_numel(c), total = 0, first_special = 256 + tk->nmerges;
    const void *data = ewb_tensor_data(c);
    int i64 = c->dtype == EWB_DTYPE_I64;
    for (int pass = 0; pass < 2; pass++) {
        int64_t o = 0;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t id = i64 ? ((const int64_t *)data)[i] : ((const int32_t *)data)[i];
            if (id < 0 || id >= tk->ntok) {
                ewb_tensor_free(c);
                return ewb_error("tokenizer_decode: id %lld at position %lld (0-based) out of range for a vocabulary of %lld",
                                 (long long)id, (long long)i, (long long)tk->ntok);
            }
            if ((flags & EWB_TOK_SKIP_SPECIAL) && id >= first_special) continue;
            int64_t l = tk->tok_off[id + 1] - tk->tok_off[id];
            if (pass == 1) memcpy(buf + o, tk->tok_bytes + tk->tok_off[id], (size_t)l);
            o += l;
        }
        total = o;
        if (!buf || n < total) break;
    }
    ewb_tensor_free(c);
    *needed = total;
    return 0;
}

/* ------------------------------------------------------------- save and load */

typedef struct { char *s; int64_t n, cap; } sbuf;
static int sb_add(sbuf *b, const char *s, int64_t n) {
    if (grow(&b->s, &b->cap, b->n + n + 1, 1)) return -1;
    memcpy(b->s + b->n, s, (size_t)n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}
static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return k < 0 || k >= (int)sizeof tmp ? -1 : sb_add(b, tmp, k);
}

int ewb_tokenizer_save(const ewb_tokenizer *tk, const char *file) {
    if (!tk) return ewb_error("tokenizer_save: tokenizer is NULL");
    if (!file) return ewb_error("tokenizer_save: file name is NULL");
    sbuf b = {0};
    int bad = sb_printf(&b, "ecgwb-bpe 1\nspecials %lld\n", (long long)tk->nspecial);
    for (int64_t i = 0; i < tk->nspecial && !bad; i++) {
        for (int64_t j = 0; j < tk->special_len[i] && !bad; j++) {
            unsigned char c = (unsigned char)tk->special[i][j];
            if (c >= '!' && c <= '~' && c != '\\') bad = sb_add(&b, (const char *)&c, 1);
            else bad = sb_printf(&b, "\\x%02x", c);
        }
        if (!bad) bad = sb_add(&b, "\n", 1);
    }
    if (!bad) bad = sb_printf(&b, "merges %lld\n", (long long)tk->nmerges);
    for (int64_t i = 0; i < tk->nmerges && !bad; i++)
        bad = sb_printf(&b, "%d %d\n", tk->merges[2 * i], tk->merges[2 * i + 1]);
    if (!bad) bad = sb_printf(&b, "checksum %016llx\n", (unsigned long long)fnv1a(b.s, b.n, FNV_BASIS));
    if (bad) { free(b.s); return ewb_error("tokenizer_save: out of memory"); }
    FILE *f = fopen(file, "wb");
    if (!f) { free(b.s); return ewb_error("tokenizer_save: cannot open '%s' for writing", file); }
    size_t w = fwrite(b.s, 1, (size_t)b.n, f);
    int closed = fclose(f);
    free(b.s);
    if (w != (size_t)b.n || closed != 0) return ewb_error("tokenizer_save: writing '%s' failed", file);
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* the next line of [*p, end) without its '\n' (NULL at the end or if the
   last line has no '\n') */
static const char *next_line(const char **p, const char *end, int64_t *len) {
    if (*p >= end) return NULL;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl) return NULL;
    const char *s = *p;
    *len = nl - s;
    *p = nl + 1;
    return s;
}

/* a decimal integer that fills the whole of s[0..n) */
static int parse_int(const char *s, int64_t n, int64_t *v) {
    if (n <= 0 || n > 18) return -1;
    int64_t x = 0;
    for (int64_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

static int load_text(ewb_tokenizer *tk, const char *file, const char *data, int64_t size) {
#define BAD(...) do { char m_[160]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        return ewb_error("tokenizer_load: '%s' is corrupt: %s", file, m_); } while (0)
    /* the checksum line closes the file */
    const char *end = data + size;
    if (size < 1 || data[size - 1] != '\n') BAD("it does not end with a newline");
    const char *last = end - 1;
    while (last > data && last[-1] != '\n') last--;
    if (end - last != 26 || memcmp(last, "checksum ", 9) != 0) BAD("no checksum line at the end");
    uint64_t want = 0;
    for (int i = 0; i < 16; i++) {
        int h = hexval(last[9 + i]);
        if (h < 0) BAD("bad checksum line");
        want = want << 4 | (uint64_t)h;
    }
    if (fnv1a(data, last - data, FNV_BASIS) != want) BAD("checksum mismatch");
    const char *p = data, *s;
    int64_t len, ns, nm;
    s = next_line(&p, last, &len);
    if (!s || len != 11 || memcmp(s, "ecgwb-bpe 1", 11) != 0) BAD("not an ecgwb-bpe 1 file");
    s = next_line(&p, last, &len);
    if (!s || len < 10 || memcmp(s, "specials ", 9) != 0 || parse_int(s + 9, len - 9, &ns) || ns > MAX_VOCAB)
        BAD("bad 'specials' line");
    char *tmp = NULL;
    for (int64_t i = 0; i < ns; i++) {
        s = next_line(&p, last, &len);
        if (!s) BAD("%lld special tokens announced, fewer found", (long long)ns);
        free(tmp);
        tmp = malloc((size_t)len + 1);
        if (!tmp) return ewb_error("tokenizer_load: out of memory");
        int64_t k = 0;
        for (int64_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)s[j];
            if (c == '\\') {
                int h1 = j + 3 < len && s[j + 1] == 'x' ? hexval(s[j + 2]) : -1;
                int h2 = h1 >= 0 ? hexval(s[j + 3]) : -1;
                if (h2 < 0) { free(tmp); BAD("bad escape in special token %lld", (long long)i); }
                tmp[k++] = (char)(h1 * 16 + h2);
                j += 3;
            } else if (c >= '!' && c <= '~') tmp[k++] = (char)c;
            else { free(tmp); BAD("raw byte 0x%02x in special token %lld", c, (long long)i); }
        }
        tmp[k] = 0;
        if ((int64_t)strlen(tmp) != k) { free(tmp); BAD("special token %lld holds a NUL byte", (long long)i); }
        if (push_special(tk, "tokenizer_load", tmp, k)) { free(tmp); return -1; }
    }
    free(tmp);
    s = next_line(&p, last, &len);
    if (!s || len < 8 || memcmp(s, "merges ", 7) != 0 || parse_int(s + 7, len - 7, &nm) || nm + ns + 256 > MAX_VOCAB)
        BAD("bad 'merges' line");
    tk->merges = malloc(sizeof(int32_t) * 2 * (nm ? nm : 1));
    if (!tk->merges) return ewb_error("tokenizer_load: out of memory");
    pmap seen = {0};
    for (int64_t i = 0; i < nm; i++) {
        s = next_line(&p, last, &len);
        const char *sp = s ? memchr(s, ' ', (size_t)len) : NULL;
        int64_t a, b;
        if (!sp || parse_int(s, sp - s, &a) || parse_int(sp + 1, s + len - sp - 1, &b)) {
            pmap_free(&seen);
            BAD("merge %lld: expected two ids", (long long)i);
        }
        if (a >= 256 + i || b >= 256 + i) {
            pmap_free(&seen);
            BAD("merge %lld uses id %lld, not yet defined", (long long)i, (long long)(a > b ? a : b));
        }
        if (pmap_get(&seen, pkey((int32_t)a, (int32_t)b)) >= 0) {
            pmap_free(&seen);
            BAD("merge %lld repeats the pair %lld %lld", (long long)i, (long long)a, (long long)b);
        }
        if (pmap_put(&seen, pkey((int32_t)a, (int32_t)b), (int32_t)i)) {
            pmap_free(&seen);
            return ewb_error("tokenizer_load: out of memory");
        }
        tk->merges[2 * i] = (int32_t)a;
        tk->merges[2 * i + 1] = (int32_t)b;
        tk->nmerges = i + 1;
    }
    pmap_free(&seen);
    if (p != last) BAD("unexpected lines after the merges");
    return rebuild(tk);
#undef BAD
}

int ewb_tokenizer_load(ewb_tokenizer **out, const char *file) {
    if (!out) return ewb_error("tokenizer_load: out is NULL");
    *out = NULL;
    if (!file) return ewb_error("tokenizer_load: file name is NULL");
    FILE *f = fopen(file, "rb");
    if (!f) return ewb_error("tokenizer_load: cannot open '%s'", file);
    char *data = NULL;
    int64_t n = 0, cap = 0;
    for (;;) {
        if (grow(&data, &cap, n + 65536, 1)) { fclose(f); free(data); return ewb_error("tokenizer_load: out of memory"); }
        size_t r = fread(data + n, 1, 65536, f);
        n += (int64_t)r;
        if (r < 65536) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(data); return ewb_error("tokenizer_load: reading '%s' failed", file); }
    ewb_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) { free(data); return ewb_error("tokenizer_load: out of memory"); }
    int rc = load_text(tk, file, data, n);
    free(data);
    if (rc) { ewb_tokenizer_free(tk); return -1; }
    *out = tk;
    return 0;
}
