-- test_condclf.lua: lua/ecgwb/condclf.lua. The priority mapping of labels
-- to conditions; a classifier trained 80 steps on 48 simulated records
-- (sinus 60-80 bpm vs atrial fibrillation vs LBBB, 4 s at 100 Hz) names
-- the condition of 24 new records with >= 80% accuracy (chance 33%), and
-- drives wb.metrics.condition_accuracy; errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

-- conditions: the first listed label present
do
  local names = { "NORM", "AFIB", "CLBBB" }
  local labels = wb.tensor { { 1, 0, 0 }, { 1, 1, 0 }, { 0, 1, 1 }, { 0, 0, 0 } }
  local c = wb.condclf.conditions(labels, names, { "AFIB", "CLBBB", "NORM" })
  T.ok(c[1] == 2 and c[2] == 0 and c[3] == 0 and c[4] == -1, "conditions: priority order, -1 for none")
  T.fails(function() wb.condclf.conditions(labels, names, { "STACH" }) end, "the label set has no 'STACH'")
end

local function make(n0, count)
  local opts = {}
  for i = 1, count do
    local k = i % 3
    opts[i] = { fs = 100, seconds = 4, seed = 11, index = n0 + i, hr = 60 + (i * 7) % 20,
      rhythm = k == 1 and "afib" or nil, bbb = k == 2 and "left" or nil, noise = { emg = 25 } }
  end
  local b = wb.sim.batch(opts)
  local names, labels = { "NORM", "AFIB", "CLBBB" }, {}
  for i = 1, count do
    local k = i % 3
    labels[i] = { k == 0 and 1 or 0, k == 1 and 1 or 0, k == 2 and 1 or 0 }
  end
  return b.ecg, wb.tensor(labels), names
end

do
  local x, labels, names = make(0, 48)
  local clf = wb.condclf.train { x = x, labels = labels, label_names = names, fs = 100, classes = { "AFIB", "CLBBB", "NORM" },
    steps = 80, batch = 16, seed = 1 }
  local xt, lt = make(1000, 24)
  local want = wb.condclf.conditions(lt, names, clf.classes)
  local acc = clf:accuracy(xt, want)
  T.ok(acc >= 0.8, string.format("held-out accuracy %.2f >= 0.8 (chance 0.33)", acc))
  local s = clf:scores(xt)
  T.ok(s:size(1) == 24 and s:size(2) == 3, "scores (N, K)")
  local acc2 = wb.metrics.condition_accuracy(xt, want, function(e) return clf:classify(e) end)
  T.close(acc2, acc, 1e-12, "metrics.condition_accuracy with the classifier")
  T.fails(function() clf:scores(xt:select(1, 1)) end, "ECGs must be (N, leads, samples)")
  T.fails(function() wb.condclf.train { x = x, labels = labels, label_names = names } end, "'fs' is required")
  T.fails(function() wb.condclf.train { x = x, labels = labels, label_names = names, fs = 100, members = 0 } end,
    "members must be a whole number >= 1, got 0")

  -- an ensemble of 3: its members are the classifiers of seeds 1, 2, 3 trained
  -- alone, and its scores are the mean of their probabilities
  local o = { x = x, labels = labels, label_names = names, fs = 100, classes = { "AFIB", "CLBBB", "NORM" }, steps = 30, batch = 16 }
  local function with(t) local c = {}; for k, v in pairs(o) do c[k] = v end; for k, v in pairs(t) do c[k] = v end; return c end
  local ens = wb.condclf.train(with { seed = 1, members = 3 })
  local m = ens:members()
  T.ok(#m == 3, "members() lists 3 classifiers")
  local mean = (m[1]:scores(xt) + m[2]:scores(xt) + m[3]:scores(xt)) * (1 / 3)
  T.ok(T.relerr(ens:scores(xt), mean) < 1e-6, "ensemble scores = the members' mean probabilities")
  T.ok(T.relerr(m[2]:scores(xt), wb.condclf.train(with { seed = 2 }):scores(xt)) < 1e-6, "member 2 = the classifier of seed 2 alone")
  T.ok(T.relerr(m[1]:scores(xt), m[3]:scores(xt)) > 1e-3, "members differ")
  T.close(ens:scores(xt):sum(2):mean():item(), 1, 1e-5, "probabilities sum to 1")
end

T.done()
