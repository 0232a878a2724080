-- test_make_sim.lua: the corpus generator writes the dataset layout with
-- labels, reports, demographics, splits and truth; its records equal the
-- simulator's and do not depend on the batch size. The default corpus is
-- generated on first use, reused after, and generated again when the file is
-- missing, damaged, of another size or not what the simulator now makes.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local dir = os.getenv("TMPDIR") or "/tmp"
local f1, f2 = dir .. "/ecgwb_make_sim_1.h5", dir .. "/ecgwb_make_sim_2.h5"
local function run(out, batch)
  local chunk = assert(loadfile("data/make_sim.lua"))
  chunk("--n", "40", "--fs", "250", "--seconds", "2", "--seed", "7", "--out", out, "--batch", batch, "--normal", "0.2")
end
run(f1, "16")
run(f2, "40")
local a, b = wb.dataset.open(f1), wb.dataset.open(f2)
T.ok(a.n == 40 and a.fs == 250 and a.samples == 500 and #a.leads == 12 and a.leads[7] == "V1", "size and shape: " .. tostring(a))
T.close(a:read(1, 40), b:read(1, 40), 0, "batch size does not change the records")
T.ok(#a.label_names == #wb.sim.label_names and a.label_names[1] == "NORM", "label names are the simulator's")
local labels, reports = a:labels(1, 40), a:reports(1, 40)
local counts, normal = {}, 0
for i = 1, 40 do
  local any = 0
  for k = 1, #a.label_names do
    local v = labels[i][k]
    if v ~= 0 and v ~= false then counts[a.label_names[k]] = (counts[a.label_names[k]] or 0) + 1; any = any + 1 end
  end
  T.ok(any >= 1 and #reports[i] > 20, "record " .. i .. " has labels and a report")
end
local distinct = 0
for _ in pairs(counts) do distinct = distinct + 1 end
T.ok(distinct >= 10, distinct .. " different labels in 40 records")
local split, sp_ok, seen = a:field("split", 1, 40), true, {}
for i = 1, 40 do local v = split[i]; seen[v] = true; if v < 1 or v > 3 then sp_ok = false end end
T.ok(sp_ok and seen[1], "splits 1..3, train present")
local hr = wb.h5.read(f1, "truth/hr")
T.ok(hr:numel() == 40 and hr:min():item() > 30 and hr:max():item() < 200, "truth/hr")
-- ids name (seed, index)
local rec = a:record(5)
T.ok(rec.id == "sim-7-4", "id " .. tostring(rec.id))
a:close(); b:close()
os.remove(f1); os.remove(f2)

-- the default corpus, with a small spec so the test is quick
local spec = wb.sim.default_corpus_spec
wb.sim.default_corpus_spec = { n = 6, fs = 250, seconds = 2, seed = 5, normal = 0.3, noise = 0.5, split = { 80, 10, 10 }, dtype = "int16" }
local made, make = 0, wb.sim.make_corpus
wb.sim.make_corpus = function(o) made = made + 1; o.progress = false; return make(o) end
local path = dir .. "/ecgwb_default_corpus_test.h5"
os.remove(path)
T.ok(wb.sim.default_corpus { path = path } == path and made == 1, "generated on first use")
local d = wb.dataset.open(path)
T.ok(d.n == 6 and d.fs == 250 and d.samples == 500 and d.int16 and d:record(6).id == "sim-5-5", "the spec's records: " .. tostring(d))
d:close()
T.ok(wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "a complete corpus is recognised")
wb.sim.default_corpus { path = path }
T.ok(made == 1, "reused when complete")
-- damaged: cut short
local f = io.open(path, "rb"); local bytes = f:read("*a"); f:close()
f = io.open(path, "wb"); f:write(bytes:sub(1, math.floor(#bytes / 2))); f:close()
T.ok(not wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "a truncated file is refused")
wb.sim.default_corpus { path = path }
T.ok(made == 2 and wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "regenerated when truncated")
-- another size, or records the simulator would not make now (another seed stands in for an older simulator)
wb.sim.default_corpus_spec.n = 7
T.ok(not wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "a corpus of another size is refused")
wb.sim.default_corpus_spec.n = 6
local other = {}
for k, v in pairs(wb.sim.default_corpus_spec) do other[k] = v end
other.seed, other.out, other.progress = 6, path, false
make(other)
local ok, why = wb.sim.corpus_ok(path, wb.sim.default_corpus_spec)
T.ok(not ok and why:find("record 1 differs"), "other records are refused: " .. tostring(why))
wb.sim.default_corpus { path = path }
T.ok(made == 3 and wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "and regenerated")
-- a corpus written by an older simulator (another corpus_version) is refused and regenerated
wb.h5.write(path, "corpus_version", wb.tensor({ wb.sim.corpus_version - 1 }, "i64"))
ok, why = wb.sim.corpus_ok(path, wb.sim.default_corpus_spec)
T.ok(not ok and why:find("older simulator", 1, true), "an older corpus version is refused: " .. tostring(why))
wb.sim.default_corpus { path = path }
T.ok(made == 4 and wb.sim.corpus_ok(path, wb.sim.default_corpus_spec), "and regenerated")
local leftovers = io.popen("ls " .. dir .. " | grep -c 'ecgwb_default_corpus_test.h5.part'"):read("*l")
T.ok(leftovers == "0", "no partial files left")
os.remove(path)
wb.sim.default_corpus_spec, wb.sim.make_corpus = spec, make
T.ok(wb.sim.default_corpus_path():match("default_sim%.h5$"), "default path " .. wb.sim.default_corpus_path())
T.done()
