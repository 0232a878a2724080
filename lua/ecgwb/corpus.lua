--[[ ecgwb.corpus: one split of an ecgwb HDF5 dataset in memory, as the
recipes use it.

  local tr = wb.corpus.load { split = "train", fs = 250 }   -- default corpus, resampled to 250 Hz
  tr.x        -- (N, 12, L) f32 in mV
  tr.labels   -- (N, K) f32 multi-hot; tr.label_names {K names}
  tr.reports, tr.ids   -- Lua lists of N strings
  tr.age, tr.sex       -- f32 (N): years (NaN unknown), 1 male / 0 female / -1 unknown
  tr.truth    -- { hr = f32 (N), pr_ms, qrs_ms, qt_ms, qtc_ms, axis_deg } when the file has truth/
  tr.index    -- Lua list of the records' 1-based numbers in the file
  tr.n, tr.fs, tr.samples, tr.file

Options: path (default wb.sim.default_corpus()); split = "train" | "validation"
| "test" | a split number | "all" (simulated corpora: 1 train, 2 validation,
3 test); fs (default: the file's rate; else wb.signal.resample per record);
seconds (keep the first seconds only); max (at most this many records, the
first ones of the split); labels (a label set's name). Records are read in
blocks of 64, so the file's signals are never all in memory at their stored
rate.
]]
local wb = require "ecgwb"

local M = {}

M.split_numbers = { train = 1, validation = 2, test = 3 }
local truth_fields = { "hr", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "axis_deg" }
local known = { path = true, split = true, fs = true, seconds = true, max = true, labels = true }

function M.load(o)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("corpus.load: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local path = o.path or wb.sim.default_corpus()
  local want = o.split or "all"
  if type(want) == "string" and want ~= "all" then
    want = M.split_numbers[want] or error("corpus.load: unknown split '" .. want .. "' (train, validation, test, all or a number)", 2)
  end
  local ds = wb.dataset.open(path)
  local ok, res = pcall(function()
    local split = ds:field("split", 1, ds.n):totable()
    local index = {}
    for i = 1, ds.n do
      if want == "all" or split[i] == want then index[#index + 1] = i end
      if o.max and #index >= o.max then break end
    end
    if #index == 0 then error(string.format("corpus.load: '%s' has no records in split %s", path, tostring(o.split)), 0) end
    local fs = o.fs or ds.fs
    local keep = o.seconds and math.floor(o.seconds * ds.fs + 0.5) or ds.samples
    if keep > ds.samples then
      error(string.format("corpus.load: %g s asked, the records of '%s' have %g s", o.seconds, path, ds.samples / ds.fs), 0)
    end
    local c = { file = path, fs = fs, n = #index, index = index, label_names = o.labels and ds.set_label_names[o.labels] or ds.label_names }
    -- contiguous runs of the split's records are read together
    local xs, ls, reports, ids = {}, {}, {}, {}
    local k = 1
    while k <= #index do
      local j = k
      while j < #index and index[j + 1] == index[j] + 1 and j - k < 63 do j = j + 1 end
      local a, b = index[k], index[j]
      local x = ds:read(a, b):narrow(3, 1, keep)
      if fs ~= ds.fs then x = wb.signal.resample(x:contiguous(), ds.fs, fs) end
      xs[#xs + 1] = x:contiguous()
      ls[#ls + 1] = ds:labels(a, b, o.labels):to("f32")
      for _, s in ipairs(ds:reports(a, b)) do reports[#reports + 1] = s end
      for _, s in ipairs(ds:ids(a, b)) do ids[#ids + 1] = s end
      k = j + 1
    end
    c.x = #xs == 1 and xs[1] or wb.cat(xs, 1)
    c.labels = #ls == 1 and ls[1] or wb.cat(ls, 1)
    c.reports, c.ids, c.samples = reports, ids, c.x:size(3)
    local function gather(t)
      local v, out = t:totable(), {}
      for i, r in ipairs(index) do out[i] = v[r] end
      return wb.tensor(out)
    end
    c.age = gather(ds:field("age", 1, ds.n))
    c.sex = gather(ds:field("sex", 1, ds.n):to("f32"))
    local okt = pcall(wb.h5.read, path, "truth/hr")
    if okt then
      c.truth = {}
      for _, f in ipairs(truth_fields) do c.truth[f] = gather(wb.h5.read(path, "truth/" .. f)) end
    end
    return c
  end)
  ds:close()
  if not ok then error(res, 2) end
  return res
end

-- rows `rows` (a Lua list of 1-based positions, or an i64 tensor of 0-based ones) of a loaded corpus
function M.subset(c, rows)
  local idx = type(rows) == "table" and wb.tensor(rows, "i64") - 1 or rows
  local lst = idx:totable()
  local out = { file = c.file, fs = c.fs, samples = c.samples, label_names = c.label_names, n = #lst }
  out.x = c.x:index_select(1, idx)
  out.labels = c.labels:index_select(1, idx)
  out.age, out.sex = c.age:index_select(1, idx), c.sex:index_select(1, idx)
  out.reports, out.ids, out.index = {}, {}, {}
  for i, r in ipairs(lst) do
    out.reports[i], out.ids[i], out.index[i] = c.reports[r + 1], c.ids[r + 1], c.index[r + 1]
  end
  if c.truth then
    out.truth = {}
    for k, v in pairs(c.truth) do out.truth[k] = v:index_select(1, idx) end
  end
  return out
end

return M
