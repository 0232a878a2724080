-- tests/test_probe_recipes.lua: recipes/linear_probe.lua and
-- recipes/finetune.lua end to end at tiny scale, on a 80-record corpus made
-- here: with no encoder file, linear_probe pretrains one through
-- pretrain_fm.lua (data = "corpus", --out) and says so; the checkpoint holds
-- the config the recipes read; both recipes return their metric tables.
-- The methods themselves are tested in tests/test_probe.lua.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local E = require "ecgwb.models.ecg_encoder"

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_test_probe_recipes"
os.execute("rm -rf '" .. dir .. "'")
local file, enc_file = dir .. "/corpus.h5", dir .. "/enc/encoder.h5"
os.execute("mkdir -p '" .. dir .. "'")
wb.sim.make_corpus { out = file, n = 80, fs = 250, seconds = 10, seed = 5, batch = 40 }

-- capture what the recipes print
local lines, real_print = {}, print
print = function(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  lines[#lines + 1] = table.concat(t, "\t")
end
local ok, lp = pcall(assert(loadfile("recipes/linear_probe.lua")),
  { corpus = file, encoder = enc_file, pretrain_steps = 2, fractions = { 0.25, 1 }, subsets = 1, probe_steps = 50 })
local lp_out = table.concat(lines, "\n")
lines = {}
local ok2, ft
if ok then
  ok2, ft = pcall(assert(loadfile("recipes/finetune.lua")), { corpus = file, encoder = enc_file, steps = 2, fractions = { 1 } })
end
print = real_print
T.ok(ok, "linear_probe ran: " .. tostring(not ok and lp or ""))
if ok then
  T.ok(lp_out:find("no pretrained encoder at " .. enc_file, 1, true) ~= nil, "says it pretrains when the file is missing")
  T.ok(lp_out:find("pretraining data: ", 1, true) ~= nil, "pretrain_fm used the corpus")
  local ck = wb.checkpoint.read(enc_file)
  T.ok(ck.config.data == "corpus" and ck.config.steps == 2 and ck.config.model == "tiny", "encoder checkpoint config")
  local enc = E.EcgEncoder { base = ck.config.model, objective = ck.config.objective }
  wb.checkpoint.load(enc_file, { model = enc, rng = false })
  T.ok(true, "the checkpoint loads into an EcgEncoder")
  for _, f in ipairs { 0.25, 1 } do
    for _, init in ipairs { "random", "pretrained" } do
      local m = lp[f] and lp[f][init]
      T.ok(m and m.auroc >= 0 and m.auroc <= 1 and m.auprc >= 0 and m.f1 >= 0, "linear_probe metrics " .. f .. " " .. init .. ": " .. (m and string.format("%g %g %g", m.auroc, m.auprc, m.f1) or "none"))
    end
  end
  T.ok(#lp.per_label.auroc == 20 and lp.per_label.names[20] == "LVOLT", "per-label results for the 20 labels")
  T.ok(lp_out:find("macro AUROC random/pretr.", 1, true) ~= nil, "the table is printed")
end
T.ok(ok2, "finetune ran: " .. tostring(not ok2 and ft or ""))
if ok2 then
  local m = ft[1]
  T.ok(m and m.random.auroc >= 0 and m.pretrained.auroc <= 1, "finetune metrics")
end
os.execute("rm -rf '" .. dir .. "'")
T.done()
