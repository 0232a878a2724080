-- test_metrics.lua: wb.metrics (lua/ecgwb/metrics.lua) against values derived
-- by hand (the arithmetic is in the comments), the simulator (Einthoven, HR),
-- and tests/fixtures/metrics.h5 written by tests/reference/make_metrics_fixtures.py
-- (independent numpy code: pairwise AUROC, AP by its definition, FID through
-- numpy.linalg.eigh, brute-force k-NN precision and recall).
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local m = wb.metrics

local function near(a, b, tol, msg) return T.ok(math.abs(a - b) <= (tol or 1e-12), string.format("%s: %.15g vs %.15g", msg, a, b)) end

------------------------------------------------------------------ classification
do
  -- sklearn's documented example: AUROC 0.75, AP 5/6 (derivation in tests/test_metrics.c)
  local macro, per = m.auroc({ 0.1, 0.4, 0.35, 0.8 }, { 0, 0, 1, 1 })
  near(macro, 0.75, 1e-12, "auroc")
  near(per[1], 0.75, 1e-12, "auroc per label")
  near(m.auprc({ 0.1, 0.4, 0.35, 0.8 }, { 0, 0, 1, 1 }), 5 / 6, 1e-12, "auprc")
  -- two labels plus one with a single class: the macro average skips it and says so
  local s = wb.tensor { { 0.1, -0.1, 0.3 }, { 0.4, -0.4, 0.2 }, { 0.35, -0.35, 0.1 }, { 0.8, -0.8, 0.9 } }
  local y = wb.tensor({ { 0, 0, 1 }, { 0, 0, 1 }, { 1, 1, 1 }, { 1, 1, 1 } }, "i64")
  local mac, p, skipped = m.auroc(s, y)
  near(mac, (0.75 + 0.25) / 2, 1e-12, "macro auroc over defined labels")
  T.ok(skipped == 1 and p[3] ~= p[3], "single-class label is NaN and skipped")
  -- F1 at 0.5 on label 1: predicted .8 only -> tp 1, fn 1 (.35), fp 0: F1 = 2/3;
  -- label 2 (negated scores): nothing predicted -> tp 0 fn 2: F1 0;
  -- label 3 (all positive): .9 predicted -> tp 1 fn 3: F1 = 2/5.
  -- micro: tp 2 fp 0 fn 6 -> 4/10; accuracy: label 1 3/4 (tn .1 .4), label 2 2/4, label 3 1/4 -> 6/12
  local f = m.f1(s, y)
  near(f.per_label[1], 2 / 3, 1e-12, "f1 label 1")
  near(f.per_label[2], 0, 1e-12, "f1 label 2 (zero division -> 0)")
  near(f.per_label[3], 2 / 5, 1e-12, "f1 label 3")
  near(f.macro, (2 / 3 + 0 + 2 / 5) / 3, 1e-12, "macro f1")
  near(f.micro, 4 / 10, 1e-12, "micro f1")
  near(f.accuracy, 0.5, 1e-12, "binary accuracy")
  near(m.f1(s, y, { threshold = 0.3 }).per_label[1], 2 * 2 / (2 * 2 + 1 + 0), 1e-12, "f1 at 0.3: tp 2 fp 1 (.4)")
  -- multiclass accuracy from (N, K) scores by argmax, and the confusion matrix
  local sc = wb.tensor { { 0.9, 0.1, 0 }, { 0.2, 0.7, 0.1 }, { 0.1, 0.2, 0.7 }, { 0.6, 0.3, 0.1 } }
  near(m.accuracy(sc, wb.tensor({ 0, 1, 2, 2 }, "i64")), 0.75, 1e-12, "argmax accuracy")
  near(m.accuracy({ "a", "b" }, { "a", "c" }), 0.5, 1e-12, "accuracy of Lua lists")
  local cm = m.confusion_matrix(wb.tensor({ 0, 1, 2, 2 }, "i64"), sc, 3)
  T.ok(table.concat(cm:totable(), ",") == "1,0,0,0,1,0,1,0,1", "confusion matrix " .. table.concat(cm:totable(), ","))
  T.fails(function() m.auroc({ 1, 2 }, { 1, 0, 1 }) end, "must have the shape of scores")
  T.fails(function() m.f1(s, y, { thresh = 1 }) end, "unknown option 'thresh'")
  T.fails(function() m.accuracy({ 1 }, { 1, 2 }) end, "1 predictions for 2 targets")
end

------------------------------------------------------------------ text
do
  local tk = m.tokenize("Sinus rhythm, rate 72 bpm. QRS 0.12 s; ST-segment (normal)!")
  T.ok(table.concat(tk, " ") == "sinus rhythm rate 72 bpm qrs 0.12 s st-segment normal", "tokenize: " .. table.concat(tk, " "))

  -- BLEU, one pair. cand "the cat is on the mat" (6), ref "there is a cat on the mat" (7)
  -- 1-grams: the x2 (ref has 1, clipped to 1), cat, is, on, mat -> 5/6
  -- 2-grams: the cat, cat is, is on, on the, the mat -> "on the", "the mat" match: 2/5
  -- 3-grams: the cat is, cat is on, is on the, on the mat -> "on the mat": 1/4
  -- 4-grams: the cat is on, cat is on the, is on the mat -> none: 0/3
  -- BP = exp(1 - 7/6)
  local cand, ref = "the cat is on the mat", "there is a cat on the mat"
  local b = m.bleu({ cand }, { ref })
  local bp = math.exp(1 - 7 / 6)
  near(b.bp, bp, 1e-12, "bleu bp")
  near(b[1], bp * 5 / 6, 1e-12, "bleu-1")
  near(b[2], bp * (5 / 6 * 2 / 5) ^ (1 / 2), 1e-12, "bleu-2")
  near(b[3], bp * (5 / 6 * 2 / 5 * 1 / 4) ^ (1 / 3), 1e-12, "bleu-3")
  near(b[4], 0, 0, "bleu-4 with no 4-gram match is 0 (no smoothing)")
  -- corpus of two: add cand "sinus rhythm" with refs {"sinus rhythm", "normal sinus rhythm"};
  -- closest ref length 2. Sums: 1-grams 7/8, 2-grams 3/6, 3-grams 1/4 (the short
  -- candidate has no 3-grams), 4-grams 0/3; c = 8, r = 7 + 2 = 9, BP = exp(1 - 9/8)
  local b2 = m.bleu({ cand, "sinus rhythm" }, { ref, { "sinus rhythm", "normal sinus rhythm" } })
  local bp2 = math.exp(1 - 9 / 8)
  near(b2[1], bp2 * 7 / 8, 1e-12, "corpus bleu-1")
  near(b2[2], bp2 * (7 / 8 * 3 / 6) ^ (1 / 2), 1e-12, "corpus bleu-2")
  near(b2[3], bp2 * (7 / 8 * 3 / 6 * 1 / 4) ^ (1 / 3), 1e-12, "corpus bleu-3")
  T.ok(b2.precisions[2][1] == 3 and b2.precisions[2][2] == 6, "bleu 2-gram counts")
  -- a longer candidate has no brevity penalty; the closest reference length ties to the shorter:
  -- cand of 3 tokens, refs of 2 and 4 tokens -> r = 2, c > r, BP = 1
  near(m.bleu({ "a b c" }, { { "a b", "a b c d" } }).bp, 1, 0, "bp = 1 when c > r")
  near(m.bleu({ "a b" }, { { "a", "a b c" } }).bp, 1, 0, "closest length tie -> shorter (1 vs 3 for c = 2): c > r")

  -- ROUGE-L: LCS("the cat is on the mat", "there is a cat on the mat") = 4 ("cat on the mat");
  -- P = 4/6, R = 4/7, F = (1 + 1.2^2) P R / (R + 1.2^2 P)
  local P, R = 4 / 6, 4 / 7
  local rl = m.rouge_l({ cand }, { ref })
  near(rl, 2.44 * P * R / (R + 1.44 * P), 1e-12, "rouge-l")
  -- several references: max P (1, 1) and max R (1, 2/3) taken separately -> P = R = 1, F = 1
  near(m.rouge_l({ "sinus rhythm" }, { { "sinus rhythm", "normal sinus rhythm" } }), 1, 1e-12, "rouge-l multi-ref")
  near(m.rouge_l({ "abc" }, { "xyz" }), 0, 0, "rouge-l no overlap")

  -- METEOR (exact). 1) hyp "the cat sat on the mat", ref "on the mat sat the cat":
  -- 6 matches; fewest chunks 3 ("the cat" -> ref 5-6, "sat" -> 4, "on the mat" -> 1-3;
  -- 2 chunks would need "sat the cat" contiguous in the hypothesis).
  -- P = R = 1, Fmean = 1, penalty 0.5 (3/6)^3 = 1/16, score 15/16
  local mt, per, exact = m.meteor({ "the cat sat on the mat" }, { "on the mat sat the cat" })
  near(mt, 15 / 16, 1e-12, "meteor permuted")
  T.ok(exact, "meteor search was exhaustive")
  -- 2) hyp "sinus rhythm with a rate of 72" (7), ref "normal sinus rhythm at a rate of 72 bpm" (9):
  -- matches sinus rhythm a rate of 72 = 6, chunks 2; P = 6/7, R = 2/3;
  -- Fmean = P R / (0.9 P + 0.1 R) = (4/7) / (27/35 + 1/15) = (4/7)/(88/105) = 15/22;
  -- penalty 0.5 (2/6)^3 = 1/54; score 15/22 * 53/54
  near(m.meteor({ "sinus rhythm with a rate of 72" }, { "normal sinus rhythm at a rate of 72 bpm" }),
    15 / 22 * 53 / 54, 1e-12, "meteor with unmatched words")
  -- 3) minimal chunks with repeated words: hyp "a b a", ref "a a b": matching hyp 1 -> ref 2,
  -- hyp 2 -> ref 3 gives the chunk "a b" plus "a": 2 chunks (a greedy left-to-right
  -- alignment, hyp 1 -> ref 1, gives 3). score = 1 - 0.5 (2/3)^3 = 23/27
  local mm, ch = m._meteor_align({ "a", "b", "a" }, { "a", "a", "b" })
  T.ok(mm == 3 and ch == 2, "meteor alignment: matches " .. mm .. ", chunks " .. ch)
  near(m.meteor({ "a b a" }, { "a a b" }), 23 / 27, 1e-12, "meteor minimal chunks")
  -- several references: the maximum; corpus: the mean
  near(m.meteor({ "a b a", "x" }, { { "z", "a a b" }, "y" }), (23 / 27 + 0) / 2, 1e-12, "meteor corpus mean")
  T.fails(function() m.meteor({ "a" }, { "a", "b" }) end, "1 candidates for 2 references")

  -- exact match with normalisation and per-type breakdown
  local em, by = m.exact_match({ "Yes.", "72 bpm", "no" }, { "yes", { "72", "72 BPM" }, "yes" },
    { types = { "verify", "query", "verify" } })
  near(em, 2 / 3, 1e-12, "exact match")
  near(by.verify, 0.5, 1e-12, "exact match verify")
  near(by.query, 1, 1e-12, "exact match query")

  -- label F1 of generated reports with a caller's parser
  local function parse(text)
    local l = {}
    if text:find("atrial fibrillation") then l[#l + 1] = "AF" end
    if text:find("tachycardia") then l[#l + 1] = "TACHY" end
    if text:find("sinus rhythm") then l[#l + 1] = "SR" end
    return l
  end
  -- AF: gen 1 (tp), gen 3 (fp) ; truth AF in 1 -> tp 1 fp 1 fn 0 -> F1 2/3
  -- TACHY: gen 1 tp; truth 2 has TACHY, gen 2 not -> fn 1 -> tp 1 fn 1 -> 2/3
  -- SR: gen 2 tp, truth 3 SR, gen 3 misses -> tp 1 fn 1 -> 2/3
  -- micro: tp 3 fp 1 fn 2 -> 6/9
  local lf = m.report_label_f1(
    { "atrial fibrillation with tachycardia", "sinus rhythm", "atrial fibrillation" },
    { "atrial fibrillation, tachycardia", { "SR", "TACHY" }, { SR = true } }, parse)
  near(lf.per_label.AF, 2 / 3, 1e-12, "label f1 AF")
  near(lf.per_label.TACHY, 2 / 3, 1e-12, "label f1 TACHY")
  near(lf.per_label.SR, 2 / 3, 1e-12, "label f1 SR")
  near(lf.micro, 6 / 9, 1e-12, "label f1 micro")
  near(lf.macro, 2 / 3, 1e-12, "label f1 macro")
  -- a fixed vocabulary: a label never seen counts as F1 0 in the macro average
  near(m.report_label_f1({ "sinus rhythm" }, { { "SR" } }, parse, { labels = { "SR", "AF" } }).macro, 0.5, 1e-12,
    "label f1 macro over the vocabulary")
end

------------------------------------------------------------------ generation
do
  -- eigen: both solvers on a small known matrix, I + u u^T with u = (1 1 1): 1, 1, 4
  for _, meth in ipairs { "ql", "jacobi" } do
    local w, v = m.eig({ { 2, 1, 1 }, { 1, 2, 1 }, { 1, 1, 2 } }, { method = meth })
    near(w[1], 1, 1e-14, meth .. " eig 1")
    near(w[3], 4, 1e-14, meth .. " eig 3")
    near(math.abs(v[1][3]), 1 / math.sqrt(3), 1e-14, meth .. " top eigenvector")
  end
  -- FID of shifted sets, rFID, CLIP, k-NN via the Lua wrappers
  wb.manual_seed(11)
  local a = wb.randn(400, 6)
  local shift = wb.zeros(1, 6)
  shift:set(1, 2, 2)
  near(m.fid(a, a + shift), 4, 1e-4, "fid of a shift by 2")
  local st = wb.rng_state()
  local r, fg, fr = m.rfid(a, a + shift, { seed = 3 })
  T.ok(wb.rng_state().offset == st.offset, "rfid restores the RNG state")
  T.ok(fr > 0 and fr < 0.5 and math.abs(r - fg / fr) < 1e-12 and r > 8, string.format("rfid %g = %g / %g", r, fg, fr))
  near(m.clip_score({ { 1, 0 }, { 0, 1 } }, { { 1, 0 }, { 1, 1 } }), (100 + 100 / math.sqrt(2)) / 2, 1e-5, "clip score")
  near(m.clip_score({ { 1, 0 } }, { { 1, 0 } }, { w = 2.5 }), 2.5, 1e-12, "CLIP-S w = 2.5")
  local rc = m.rclip({ { 1, 0 } }, { { 1, 1 } }, { { 1, 0 } })
  near(rc, math.sqrt(2), 1e-6, "rclip = 1 / cos 45")
  local p, rcl = m.knn_precision_recall(a, a)
  T.ok(p == 1 and rcl == 1, "knn identical")
  p, rcl = m.knn_precision_recall(a, a + 50)
  T.ok(p == 0 and rcl == 0, "knn far")
  T.fails(function() m.knn_precision_recall(a, wb.randn(5, 3)) end, "differ in embedding size")

  -- the simulator's leads obey Einthoven's and Goldberger's laws (to f32 rounding)
  local ecg = wb.sim.ecg { fs = 500, seconds = 4, hr = 80, seed = 2 }
  local limb, aug = m.einthoven(ecg)
  T.ok(limb < 1e-5 and aug < 1e-5, string.format("einthoven of simulated ECG: %g %g", limb, aug))
  -- a batch, with lead III corrupted by 0.1 mV: limb error 0.1 / 2 averaged over 2 records
  local e2 = wb.stack({ ecg, ecg:clone() })
  local bad = e2:clone()
  local lead3 = bad:select(1, 2):select(1, 3)
  lead3:add_(wb.full({ lead3:size(1) }, 0.1))
  limb = m.einthoven(bad)
  near(limb, 0.05, 1e-5, "einthoven of a corrupted lead")

  -- HR MAE on simulated ECGs at requested rates (the detector is checked in test_signal)
  local ecgs, req = {}, { 60, 75, 100 }
  for i, hr in ipairs(req) do ecgs[i] = wb.sim.ecg { fs = 500, seconds = 10, hr = hr, hr_std = 1, seed = 5, index = i } end
  local h = m.hr_mae(wb.stack(ecgs), req, 500)
  T.ok(h.failed == 0 and h.mae < 3, string.format("hr mae %g bpm (failed %d)", h.mae, h.failed))
  local h2 = m.hr_mae(ecgs, { 70, 85, 110 }, 500) -- each off by 10 bpm
  T.ok(math.abs(h2.mae - 10) < 3, "hr mae of wrong requests " .. h2.mae)
  local flat = m.hr_mae({ wb.zeros(12, 5000) }, { 60 }, 500)
  T.ok(flat.failed == 1 and flat.mae ~= flat.mae, "flat line: no HR measured")

  -- condition accuracy with a classifier: here, tachycardia if the measured HR > 100
  local function classify(x)
    local out = {}
    for i = 1, x:size(1) do
      local _, hr = wb.signal.rpeaks(x:select(1, i), 500)
      out[i] = hr > 100 and 1 or 0
    end
    return out
  end
  local fast = {}
  for i, hr in ipairs { 60, 130, 70, 140 } do fast[i] = wb.sim.ecg { fs = 500, seconds = 6, hr = hr, seed = 9, index = i } end
  local acc, pred = m.condition_accuracy(wb.stack(fast), { 0, 1, 0, 1 }, classify)
  near(acc, 1, 0, "condition accuracy " .. table.concat(pred, ","))
  near(m.condition_accuracy(wb.stack(fast), { 0, 1, 1, 1 }, classify), 0.75, 1e-12, "condition accuracy 3/4")
end

------------------------------------------------------------------ fixtures from numpy
do
  local f = "tests/fixtures/metrics.h5"
  local fh = io.open(f)
  T.ok(fh ~= nil, "fixture " .. f .. " exists")
  if fh then
    fh:close()
    local function rd(name) return wb.h5.read(f, name) end
    local ma, pa = m.auroc(rd("cls/scores"), rd("cls/labels"))
    local want = rd("cls/auroc"):totable()
    for j = 1, #want do near(pa[j], want[j], 1e-6, "fixture auroc " .. j) end
    local _, pp = m.auprc(rd("cls/scores"), rd("cls/labels"))
    want = rd("cls/ap"):totable()
    for j = 1, #want do near(pp[j], want[j], 1e-6, "fixture ap " .. j) end
    for _, case in ipairs { "small", "wide" } do
      local fid = m.fid(rd("fid/" .. case .. "/a"), rd("fid/" .. case .. "/b"))
      local w = rd("fid/" .. case .. "/fid"):item()
      near(fid, w, 1e-6 * math.abs(w), "fixture fid " .. case)
    end
    local kp, kr = m.knn_precision_recall(rd("knn/real"), rd("knn/fake"), { k = 3 })
    local kw = rd("knn/pr"):totable()
    -- stored as f32; one sample changes the fraction by 1/250, so 1e-6 still demands equal counts
    near(kp, kw[1], 1e-6, "fixture knn precision")
    near(kr, kw[2], 1e-6, "fixture knn recall")
  end
end

T.done()
