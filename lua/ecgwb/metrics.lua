--[[ ecgwb.metrics: the evaluation metrics of the papers ecgwb reproduces.
The heavy numeric parts are in C (core/metrics.c); text metrics are here.

  local m = wb.metrics
  -- classification: scores (N) or (N, L), labels the same shape (tensors or Lua tables)
  local macro, per = m.auroc(scores, labels)       -- per[l]: one value per label (NaN: one class only)
  local macro_ap, per_ap = m.auprc(scores, labels)
  local f = m.f1(scores, labels, { threshold = 0.5 }) -- f.macro, f.micro, f.per_label, f.accuracy
  local acc = m.accuracy(pred, target)             -- pred (N, K) scores (argmax) or (N) classes
  local cm = m.confusion_matrix(target, pred, k)   -- i64 (k, k): rows true, columns predicted
  -- reports and QA (strings, one reference string or a list of them per candidate)
  local b = m.bleu(cands, refs)                    -- b[1]..b[4] = BLEU-1..4, b.bp, b.precisions
  local r = m.rouge_l(cands, refs)                 -- mean ROUGE-L F (beta 1.2), per sentence second
  local mt = m.meteor(cands, refs)                 -- exact-match METEOR (no stems, no synonyms)
  local em = m.exact_match(preds, answers, { types = qtypes })
  local lf = m.report_label_f1(generated, references, parser) -- parser(text) -> labels
  -- generation: embeddings (N, D) f32
  m.fid(real, gen); m.rfid(real, gen, { seed = 0 })
  m.clip_score(ecg_emb, text_emb, { w = 100 }); m.rclip(gen_emb, real_emb, text_emb)
  m.knn_precision_recall(real, gen, { k = 3 })
  m.hr_mae(ecgs, requested_hr, fs); m.einthoven(ecgs); m.condition_accuracy(ecgs, conditions, classify)

Definitions (and where they differ from the usual reference code):
- AUROC: sklearn's roc_auc_score per label: the Mann-Whitney U statistic with
  average ranks for ties, equal to the trapezoidal area under the ROC curve.
  A label with a single class gives NaN (sklearn raises); the macro average
  is over the labels where it is defined, and says how many were skipped.
- AUPRC: sklearn's average_precision_score, AP = sum_k (R_k - R_{k-1}) P_k
  over distinct score thresholds from the top (tied scores are one
  threshold); no interpolation. NaN for a label with no positives.
- F1 at a threshold (score >= threshold is positive): 2TP / (2TP + FP + FN),
  0 when that is 0/0 (sklearn's zero_division=0); macro = mean over labels,
  micro = from the summed counts.
- BLEU-n (Papineni et al. 2002): corpus BLEU as nlg-eval / pycocoevalcap
  compute it: clipped n-gram counts summed over the corpus, the geometric
  mean of p_1..p_n with equal weights, brevity penalty exp(1 - r/c) when
  c <= r, r the sum of the closest reference lengths (ties: the shorter).
  No smoothing: if some order k <= n has no match, BLEU-n is 0 (nltk's
  corpus_bleu returns 0 as well; pycocoevalcap adds 1e-15 / 1e-9 and returns
  a tiny positive number instead).
- ROUGE-L: pycocoevalcap's Rouge: per candidate, LCS against each reference,
  P = max LCS/|cand|, R = max LCS/|ref| (maxima taken separately),
  F = (1 + b^2) P R / (R + b^2 P) with b = 1.2, 0 if P or R is 0; the corpus
  score is the mean over candidates.
- METEOR, exact-match variant (METEOR 1.0 scoring, Banerjee and Lavie 2005,
  with only the exact module; nltk's meteor_score without stemming and
  WordNet synonyms): the alignment maps as many unigrams as possible, and
  among those alignments the one with the fewest chunks (found by an exact
  branch-and-bound search; if a pair needs more than 200000 search nodes the
  best alignment found so far is used and `exact` is false). P = m/|cand|,
  R = m/|ref|, Fmean = P R / (alpha P + (1 - alpha) R) with alpha = 0.9,
  penalty = gamma (chunks/m)^beta with gamma = 0.5, beta = 3, score =
  Fmean (1 - penalty); 0 without matches. Several references: the maximum.
  Corpus score: the mean over candidates. (nltk aligns greedily, so on
  repeated words it can count more chunks than this minimum.)
- Tokens (BLEU, ROUGE-L, METEOR, exact match): lower case; tokens are runs
  of letters, digits and . - / ' ; those four are stripped from the ends of
  a token ("72." -> "72", "0.12" stays). A pre-tokenised candidate (a table
  of strings) is used as is.
- FID: |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(sqrt(S1) S2 sqrt(S1)), with
  unbiased covariances (numpy.cov, as pytorch-fid); the square root through
  symmetric eigendecompositions in double (Householder + QL, core/metrics.c).
  Not clamped: FID of a set with itself may be -1e-12.
- rFID = FID(real, gen) / FID(real half A, real half B), the halves from a
  seeded permutation of the real set.
- CLIP score: mean over pairs of max(w cos(e_i, t_i), 0). w = 100 is the
  common image-generation CLIP score (torchmetrics' CLIPScore clips the mean
  instead of each pair; identical when no cosine is negative); w = 2.5 is
  CLIP-S of Hessel et al. 2021. rCLIP = CLIP(gen, text) / CLIP(real, text).
- k-NN precision and recall: Kynkaenniemi et al. 2019, k = 3: a sample is in
  a set's manifold if it lies within the k-th nearest-neighbour distance of
  some sample of that set (Euclidean; distance <= radius counts).
- HR MAE: mean |requested - measured| bpm, measured = 60000 / mean RR of
  wb.signal.rpeaks on all leads of the generated ECG; records where fewer
  than 2 beats are found are left out and counted in `failed`.
- Einthoven error: mean |I + III - II| and mean |aVR + aVL + aVF| (mV) over
  all samples, leads in the order I II III aVR aVL aVF V1..V6.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

local function opts(o, known, name)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("metrics." .. name .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return o
end

local function as_tensor(x, name, what)
  if wb.is_tensor(x) then return x end
  if type(x) == "table" then return wb.tensor(x) end
  error("metrics." .. name .. ": " .. what .. " must be a tensor or a Lua table, got " .. type(x), 3)
end

local function nlabels(s) return s:dim() == 2 and s:size(2) or 1 end

-- mean of the non-NaN values; the count of NaN ones
local function nanmean(t)
  local s, n, skipped = 0, 0, 0
  for i = 1, #t do
    if t[i] == t[i] then s, n = s + t[i], n + 1 else skipped = skipped + 1 end
  end
  return n > 0 and s / n or 0 / 0, skipped
end

local function per_label(f, name)
  return function(scores, labels)
    scores = as_tensor(scores, name, "scores"):to("f32")
    labels = as_tensor(labels, name, "labels")
    local l = nlabels(scores)
    local out = ffi.new("double[?]", l)
    I.check(f(scores.ptr, labels.ptr, out), 1)
    local per = {}
    for j = 1, l do per[j] = out[j - 1] end
    local macro, skipped = nanmean(per)
    return macro, per, skipped
  end
end

------------------------------------------------------------------ classification

-- macro AUROC, per-label table, number of labels left out (single class)
M.auroc = per_label(C.ewb_auroc, "auroc")
-- macro average precision, per label, labels left out (no positives)
M.auprc = per_label(C.ewb_average_precision, "auprc")
M.average_precision = M.auprc

function M.f1(scores, labels, o)
  o = opts(o, { threshold = true }, "f1")
  scores = as_tensor(scores, "f1", "scores"):to("f32")
  labels = as_tensor(labels, "f1", "labels")
  local l = nlabels(scores)
  local c = ffi.new("int64_t[?]", 4 * l)
  I.check(C.ewb_binary_counts(scores.ptr, labels.ptr, o.threshold or 0.5, c), 1)
  local function f1(tp, fp, fn) return (2 * tp + fp + fn) > 0 and 2 * tp / (2 * tp + fp + fn) or 0 end
  local r = { per_label = {}, precision = {}, recall = {}, counts = {} }
  local TP, FP, FN, TN = 0, 0, 0, 0
  for j = 1, l do
    local tp, fp, fn, tn = tonumber(c[4 * j - 4]), tonumber(c[4 * j - 3]), tonumber(c[4 * j - 2]), tonumber(c[4 * j - 1])
    r.per_label[j] = f1(tp, fp, fn)
    r.precision[j] = tp + fp > 0 and tp / (tp + fp) or 0
    r.recall[j] = tp + fn > 0 and tp / (tp + fn) or 0
    r.counts[j] = { tp = tp, fp = fp, fn = fn, tn = tn }
    TP, FP, FN, TN = TP + tp, FP + fp, FN + fn, TN + tn
  end
  r.macro = nanmean(r.per_label)
  r.micro = f1(TP, FP, FN)
  r.accuracy = (TP + TN) / (TP + FP + FN + TN)
  return r
end

-- classes as a flat Lua list: (N, K) scores -> argmax (0-based), (N) -> values
local function classes(x, name)
  if wb.is_tensor(x) then
    if x:dim() == 2 then x = x:argmax(2) end
    return x:totable()
  end
  if type(x) ~= "table" then error("metrics." .. name .. ": expected a tensor or a Lua table, got " .. type(x), 3) end
  return x
end

-- fraction of pred == target; pred (N, K) scores are reduced by argmax
function M.accuracy(pred, target)
  local p, t = classes(pred, "accuracy"), classes(target, "accuracy")
  if #p ~= #t then error("metrics.accuracy: " .. #p .. " predictions for " .. #t .. " targets", 2) end
  if #p == 0 then error("metrics.accuracy: no samples", 2) end
  local hit = 0
  for i = 1, #p do if p[i] == t[i] then hit = hit + 1 end end
  return hit / #p
end

-- (k, k) i64 counts, rows the true class, columns the predicted; classes 0-based
function M.confusion_matrix(target, pred, k)
  local function i64(x)
    if wb.is_tensor(x) then
      if x:dim() == 2 then x = x:argmax(2) end
      return x:type() == "i64" and x or x:to("i64")
    end
    return wb.tensor(x, "i64")
  end
  return I.op1(C.ewb_confusion_matrix, i64(target), i64(pred), k)
end

------------------------------------------------------------------ text

function M.tokenize(s)
  if type(s) == "table" then return s end
  if type(s) ~= "string" then error("metrics.tokenize: expected a string, got " .. type(s), 2) end
  local out = {}
  for tok in s:lower():gmatch("[%w%.%-/']+") do
    tok = tok:gsub("^[%.%-/']+", ""):gsub("[%.%-/']+$", "")
    if tok ~= "" then out[#out + 1] = tok end
  end
  return out
end

-- candidates and references as token lists. refs[i]: a reference string, or a
-- list of references (strings, or token lists for pre-tokenised text)
local function text_pairs(cands, refs, name)
  if type(cands) == "string" then cands, refs = { cands }, { refs } end
  if type(cands) ~= "table" or type(refs) ~= "table" then
    error("metrics." .. name .. ": candidates and references must be lists", 3)
  end
  if #cands ~= #refs then error("metrics." .. name .. ": " .. #cands .. " candidates for " .. #refs .. " references", 3) end
  if #cands == 0 then error("metrics." .. name .. ": no candidates", 3) end
  local C_, R_ = {}, {}
  for i = 1, #cands do
    C_[i] = M.tokenize(cands[i])
    local r = refs[i]
    -- one reference string, or a list of references (strings or token lists)
    if type(r) == "string" then r = { r } end
    if type(r) ~= "table" or #r == 0 then error("metrics." .. name .. ": candidate " .. i .. " has no reference", 3) end
    R_[i] = {}
    for j = 1, #r do R_[i][j] = M.tokenize(r[j]) end
  end
  return C_, R_
end

local function ngram_counts(toks, n)
  local c = {}
  for i = 1, #toks - n + 1 do
    local g = table.concat(toks, "\1", i, i + n - 1)
    c[g] = (c[g] or 0) + 1
  end
  return c
end

-- corpus BLEU-1..max_n: result[n], plus bp, ratio (c/r), precisions {matches, totals}
function M.bleu(cands, refs, o)
  o = opts(o, { max_n = true }, "bleu")
  local N = o.max_n or 4
  local cs, rs = text_pairs(cands, refs, "bleu")
  local match, total = {}, {}
  for n = 1, N do match[n], total[n] = 0, 0 end
  local clen, rlen = 0, 0
  for i = 1, #cs do
    local c, best = cs[i], nil
    clen = clen + #c
    for _, r in ipairs(rs[i]) do -- closest reference length, ties to the shorter
      if not best or math.abs(#r - #c) < math.abs(best - #c) or (math.abs(#r - #c) == math.abs(best - #c) and #r < best) then
        best = #r
      end
    end
    rlen = rlen + best
    for n = 1, N do
      local cc, maxref = ngram_counts(c, n), {}
      for _, r in ipairs(rs[i]) do
        for g, k in pairs(ngram_counts(r, n)) do maxref[g] = math.max(maxref[g] or 0, k) end
      end
      for g, k in pairs(cc) do match[n] = match[n] + math.min(k, maxref[g] or 0) end
      total[n] = total[n] + math.max(#c - n + 1, 0)
    end
  end
  local bp = clen == 0 and 0 or (clen > rlen and 1 or math.exp(1 - rlen / clen))
  local res = { bp = bp, ratio = rlen > 0 and clen / rlen or 0, precisions = {} }
  local logsum = 0
  for n = 1, N do
    local p = total[n] > 0 and match[n] / total[n] or 0
    res.precisions[n] = { match[n], total[n] }
    logsum = logsum + (p > 0 and math.log(p) or -math.huge)
    res[n] = bp * math.exp(logsum / n) -- 0 once some order has no match
  end
  return res
end

local function lcs(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = 0 end
  for i = 1, #a do
    cur[0] = 0
    for j = 1, #b do
      cur[j] = a[i] == b[j] and prev[j - 1] + 1 or math.max(prev[j], cur[j - 1])
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

-- mean ROUGE-L F over candidates; per-candidate scores second
function M.rouge_l(cands, refs, o)
  o = opts(o, { beta = true }, "rouge_l")
  local b2 = (o.beta or 1.2) ^ 2
  local cs, rs = text_pairs(cands, refs, "rouge_l")
  local per, sum = {}, 0
  for i = 1, #cs do
    local c, pmax, rmax = cs[i], 0, 0
    for _, r in ipairs(rs[i]) do
      local l = lcs(c, r)
      if #c > 0 then pmax = math.max(pmax, l / #c) end
      if #r > 0 then rmax = math.max(rmax, l / #r) end
    end
    per[i] = (pmax > 0 and rmax > 0) and (1 + b2) * pmax * rmax / (rmax + b2 * pmax) or 0
    sum = sum + per[i]
  end
  return sum / #cs, per
end

local METEOR_NODES = 200000

-- exact-match alignment of h to r: matches, minimum chunks, whether the search was exhaustive
local function meteor_align(h, r)
  local where, ch, cr = {}, {}, {}
  for j, w in ipairs(r) do
    where[w] = where[w] or {}
    where[w][#where[w] + 1] = j
    cr[w] = (cr[w] or 0) + 1
  end
  for _, w in ipairs(h) do ch[w] = (ch[w] or 0) + 1 end
  local matches, skips = 0, {}
  for w, k in pairs(ch) do
    local m = math.min(k, cr[w] or 0)
    matches = matches + m
    skips[w] = k - m -- hyp occurrences that must stay unmatched
  end
  if matches == 0 then return 0, 0, true end
  local used, best, nodes, exact = {}, math.huge, 0, true
  local function dfs(i, prev, chunks)
    if chunks >= best then return end
    if i > #h then best = chunks; return end
    nodes = nodes + 1
    if nodes > METEOR_NODES then exact = false; return end
    local w = h[i]
    local nxt = prev and prev + 1
    if nxt and r[nxt] == w and not used[nxt] then -- extend the current chunk first
      used[nxt] = true
      dfs(i + 1, nxt, chunks)
      used[nxt] = false
    end
    for _, j in ipairs(where[w] or {}) do
      if j ~= nxt and not used[j] then
        used[j] = true
        dfs(i + 1, j, chunks + 1)
        used[j] = false
      end
    end
    if skips[w] > 0 then
      skips[w] = skips[w] - 1
      dfs(i + 1, nil, chunks)
      skips[w] = skips[w] + 1
    end
  end
  dfs(1, nil, 0)
  return matches, best, exact
end
M._meteor_align = meteor_align

-- mean exact-match METEOR over candidates; per-candidate scores; all alignments exact?
function M.meteor(cands, refs, o)
  o = opts(o, { alpha = true, beta = true, gamma = true }, "meteor")
  local alpha, beta, gamma = o.alpha or 0.9, o.beta or 3, o.gamma or 0.5
  local cs, rs = text_pairs(cands, refs, "meteor")
  local per, sum, all_exact = {}, 0, true
  for i = 1, #cs do
    local h, best = cs[i], 0
    for _, r in ipairs(rs[i]) do
      local m, chunks, exact = meteor_align(h, r)
      all_exact = all_exact and exact
      if m > 0 then
        local p, rc = m / #h, m / #r
        local fmean = p * rc / (alpha * p + (1 - alpha) * rc)
        best = math.max(best, fmean * (1 - gamma * (chunks / m) ^ beta))
      end
    end
    per[i] = best
    sum = sum + best
  end
  return sum / #cs, per, all_exact
end

local function normalize(s)
  if type(s) ~= "string" then s = tostring(s) end
  return table.concat(M.tokenize(s), " ")
end

-- fraction of predictions equal to an answer after normalisation (lower case,
-- punctuation dropped, single spaces); answers[i] a string or a list of
-- accepted strings; o.types[i] groups the questions: per-type table second
function M.exact_match(preds, answers, o)
  o = opts(o, { types = true }, "exact_match")
  if #preds ~= #answers then error("metrics.exact_match: " .. #preds .. " predictions for " .. #answers .. " answers", 2) end
  if #preds == 0 then error("metrics.exact_match: no predictions", 2) end
  local hits, by = 0, {}
  for i = 1, #preds do
    local a = type(answers[i]) == "table" and answers[i] or { answers[i] }
    local p, hit = normalize(preds[i]), 0
    for _, x in ipairs(a) do if normalize(x) == p then hit = 1 end end
    hits = hits + hit
    if o.types then
      local t = o.types[i]
      by[t] = by[t] or { n = 0, hits = 0 }
      by[t].n, by[t].hits = by[t].n + 1, by[t].hits + hit
    end
  end
  local per_type = {}
  for t, v in pairs(by) do per_type[t] = v.hits / v.n end
  return hits / #preds, per_type
end

-- label set: parser output as a list or a set (label -> true)
local function label_set(x)
  local s = {}
  for k, v in pairs(x) do
    if type(k) == "number" then s[v] = true elseif v then s[k] = true end
  end
  return s
end

-- F1 of the labels parsed from generated reports against the references'
-- labels. references[i]: a report text (parsed with the same parser) or a
-- list/set of labels. o.labels: the label vocabulary for the macro average
-- and the micro counts (default: every label seen). Returns {micro, macro, per_label, counts}.
function M.report_label_f1(generated, references, parser, o)
  o = opts(o, { labels = true }, "report_label_f1")
  if type(parser) ~= "function" then error("metrics.report_label_f1: parser must be a function text -> labels", 2) end
  if #generated ~= #references then
    error("metrics.report_label_f1: " .. #generated .. " reports for " .. #references .. " references", 2)
  end
  local counts, seen = {}, {}
  local function cnt(l)
    counts[l] = counts[l] or { tp = 0, fp = 0, fn = 0 }
    if not seen[l] then seen[l] = true; seen[#seen + 1] = l end
    return counts[l]
  end
  if o.labels then for _, l in ipairs(o.labels) do cnt(l) end end
  for i = 1, #generated do
    local g = label_set(parser(generated[i]))
    local ref = references[i]
    local t = label_set(type(ref) == "string" and parser(ref) or ref)
    for l in pairs(g) do if t[l] then cnt(l).tp = cnt(l).tp + 1 else cnt(l).fp = cnt(l).fp + 1 end end
    for l in pairs(t) do if not g[l] then cnt(l).fn = cnt(l).fn + 1 end end
  end
  local vocab = o.labels and label_set(o.labels) or seen
  local TP, FP, FN, per, f1s = 0, 0, 0, {}, {}
  for _, l in ipairs(seen) do
    local c = counts[l]
    if vocab[l] then
      local d = 2 * c.tp + c.fp + c.fn
      per[l] = d > 0 and 2 * c.tp / d or 0
      f1s[#f1s + 1] = per[l]
      TP, FP, FN = TP + c.tp, FP + c.fp, FN + c.fn
    end
  end
  local d = 2 * TP + FP + FN
  return { micro = d > 0 and 2 * TP / d or 0, macro = #f1s > 0 and nanmean(f1s) or 0, per_label = per, counts = counts }
end

------------------------------------------------------------------ generation

local function emb(x, name)
  x = as_tensor(x, name, "embeddings")
  if x:type() ~= "f32" then x = x:to("f32") end
  return x
end

function M.fid(a, b)
  local v = ffi.new("double[1]")
  I.check(C.ewb_fid(emb(a, "fid").ptr, emb(b, "fid").ptr, v), 1)
  return v[0]
end

-- rFID, FID(real, gen), FID(real half A, real half B); halves from a seeded
-- permutation (the global RNG state is restored afterwards)
function M.rfid(real, gen, o)
  o = opts(o, { seed = true }, "rfid")
  real = emb(real, "rfid")
  local n = real:size(1)
  if n < 4 then error("metrics.rfid: the real set needs at least 4 embeddings to split, got " .. n, 2) end
  local st = wb.rng_state()
  wb.manual_seed(o.seed or 0)
  local perm = wb.randperm(n)
  wb.set_rng_state(st)
  local h = math.floor(n / 2)
  local a = real:index_select(1, perm:narrow(1, 1, h))
  local b = real:index_select(1, perm:narrow(1, h + 1, h))
  local f_gen, f_ref = M.fid(real, gen), M.fid(a, b)
  return f_gen / f_ref, f_gen, f_ref
end

-- mean over pairs of max(w cos, 0); w = 100 (default) or 2.5 (CLIP-S)
function M.clip_score(a, b, o)
  o = opts(o, { w = true }, "clip_score")
  local v = ffi.new("double[1]")
  I.check(C.ewb_clip_score(emb(a, "clip_score").ptr, emb(b, "clip_score").ptr, o.w or 100, v), 1)
  return v[0]
end

-- rCLIP = CLIP(gen, text) / CLIP(real, text); both scores follow
function M.rclip(gen, real, text, o)
  local g, r = M.clip_score(gen, text, o), M.clip_score(real, text, o)
  return g / r, g, r
end

function M.knn_precision_recall(real, fake, o)
  o = opts(o, { k = true }, "knn_precision_recall")
  local p, r = ffi.new("double[1]"), ffi.new("double[1]")
  I.check(C.ewb_knn_precision_recall(emb(real, "knn_precision_recall").ptr, emb(fake, "knn_precision_recall").ptr,
    o.k or 3, p, r), 1)
  return p[0], r[0]
end

-- mean |I + III - II| and mean |aVR + aVL + aVF| of (..., 12, T) ECGs
function M.einthoven(ecg)
  local a, b = ffi.new("double[1]"), ffi.new("double[1]")
  I.check(C.ewb_einthoven_error(as_tensor(ecg, "einthoven", "ecg").ptr, a, b), 1)
  return a[0], b[0]
end

local function records(ecgs, name)
  if wb.is_tensor(ecgs) then
    if ecgs:dim() == 2 then return { ecgs } end
    if ecgs:dim() ~= 3 then error("metrics." .. name .. ": ECGs must be (B, leads, T), got " .. ecgs:describe(), 3) end
    local list = {}
    for i = 1, ecgs:size(1) do list[i] = ecgs:select(1, i) end
    return list
  end
  if type(ecgs) ~= "table" then error("metrics." .. name .. ": ECGs must be a tensor or a list of tensors", 3) end
  return ecgs
end

-- {mae, measured = {bpm or NaN per record}, failed = count}
function M.hr_mae(ecgs, requested, fs)
  local list = records(ecgs, "hr_mae")
  local req = wb.is_tensor(requested) and requested:totable() or requested
  if #req ~= #list then error("metrics.hr_mae: " .. #req .. " requested rates for " .. #list .. " ECGs", 2) end
  if not fs then error("metrics.hr_mae: need the sampling rate fs (Hz)", 2) end
  local sum, n, failed, measured = 0, 0, 0, {}
  for i, x in ipairs(list) do
    local peaks = wb.signal.rpeaks(x, fs)
    local hr = peaks:numel() >= 2 and wb.signal.rhythm(peaks, fs).hr or 0 / 0
    measured[i] = hr
    if hr == hr then sum, n = sum + math.abs(hr - req[i]), n + 1 else failed = failed + 1 end
  end
  return { mae = n > 0 and sum / n or 0 / 0, measured = measured, failed = failed }
end

-- classify(ecgs) -> (B, K) scores or (B) classes (tensor or table);
-- conditions: the requested classes in the same coding. Returns accuracy, predictions.
function M.condition_accuracy(ecgs, conditions, classify)
  if type(classify) ~= "function" then error("metrics.condition_accuracy: classify must be a function", 2) end
  local pred = classes(classify(ecgs), "condition_accuracy")
  return M.accuracy(pred, conditions), pred
end

-- eigenvalues (ascending) and eigenvectors (columns, nested table) of a
-- symmetric matrix given as a nested table or an (n, n) tensor; o.method "ql" or "jacobi"
function M.eig(a, o)
  o = opts(o, { method = true }, "eig")
  local rows = wb.is_tensor(a) and a:tolist() or a
  local n = #rows
  local buf, w, v = ffi.new("double[?]", n * n), ffi.new("double[?]", n), ffi.new("double[?]", n * n)
  for i = 1, n do
    if #rows[i] ~= n then error("metrics.eig: need a square matrix", 2) end
    for j = 1, n do buf[(i - 1) * n + j - 1] = rows[i][j] end
  end
  local f = (o.method or "ql") == "jacobi" and C.ewb_sym_eig_jacobi or C.ewb_sym_eig
  if f(buf, n, w, v) < 0 then error(ffi.string(C.ewb_last_error()), 2) end
  local vals, vecs = {}, {}
  for i = 1, n do
    vals[i] = w[i - 1]
    vecs[i] = {}
    for j = 1, n do vecs[i][j] = v[(i - 1) * n + j - 1] end
  end
  return vals, vecs
end

return M
