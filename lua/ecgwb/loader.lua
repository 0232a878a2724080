--[[ ecgwb.loader: shuffled, augmented batches made on worker threads (core/loader.c).

  local ld = wb.loader.new("train.h5", {          -- an ecgwb dataset file (or a wb.dataset)
    batch = 32, shuffle = true, seed = 1, epochs = 10, drop_last = true,
    split = 1,                                     -- or a list {1, 2, ..., 8}: keep records of these splits
    label_set = "superclass",                      -- default: `labels`
    workers = 2, prefetch = 4,                     -- threads, batches made ahead (default 2 * workers)
    same_priority = false,                         -- default: workers at nice 19, taking the CPU training leaves idle
    augment = { { "crop", length = 2500 }, { "lead_mask", p = 0.5 }, { "noise", sigma = 0.05 },
                { "wander", amplitude = 0.2 }, { "scale", lo = 0.8, hi = 1.2 }, { "shift", max = 100 } },
  })
  for epoch = 1, 10 do
    for b in ld:epoch() do ... b.signals (B, leads, samples) f32, b.labels (B, L) bool, b.index (B) i64 (0-based
      record numbers), b.age, b.sex, b.patient_id, b.split, b.epoch, b.batch (1-based), b.size ... end
  end
  ld:close()

  wb.loader.new({ signals = x, labels = y, fs = 500 }, opts)   -- in-memory (N, leads, samples) f32 and rows of y

ld:next() gives the next batch (waiting for it) or nil after the last epoch
(epochs = nil: never). ld:ready() is true when next() would not wait.
ld:stats() counts batches taken and produced, the most ever prepared ahead
(never above prefetch), and the time next() spent waiting. ld.n (records per
epoch), ld.batches (per epoch), ld.leads, ld.samples (after crop), ld.fs.

Augmentations run in the listed order, each on a random stream keyed by
(seed, epoch, record), so a record's augmented signal is the same at any
thread count:
  crop      length            a random window of `length` samples
  lead_mask p = 0.5           each lead zeroed with probability p; at least one kept
  noise     sigma (mV) | snr_db    Gaussian noise; snr_db against the record's mean square
  wander    amplitude = 0.1 (mV), fmin = 0.05, fmax = 0.5 (Hz), count = 2
                              per lead, count sinusoids of amplitude U(0, amplitude),
                              frequency U(fmin, fmax) and random phase
  scale     lo = 0.8, hi = 1.2     the record times U(lo, hi)
  shift     max (samples), circular = true    shift by an integer U[-max, max]; zeros fill when not circular
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}
local Loader = {}
Loader.__index = Loader

local out = ffi.new("ewb_loader*[1]")

-- name -> kind, and the options each takes with their defaults (false: required)
local augs = {
  crop = { C.EWB_AUG_CROP, { length = false } },
  lead_mask = { C.EWB_AUG_LEAD_MASK, { p = 0.5 } },
  noise = { C.EWB_AUG_NOISE, { sigma = 0, snr_db = 0 } },
  wander = { C.EWB_AUG_WANDER, { amplitude = 0.1, fmin = 0.05, fmax = 0.5, count = 2 } },
  scale = { C.EWB_AUG_SCALE, { lo = 0.8, hi = 1.2 } },
  shift = { C.EWB_AUG_SHIFT, { max = false, circular = true } },
}
local aug_names = "crop, lead_mask, noise, wander, scale, shift"

local function fill_aug(a, o, k)
  local where = "loader: augment[" .. k .. "]"
  if type(o) ~= "table" or type(o[1]) ~= "string" then
    error(where .. " must be a table like { \"crop\", length = 2500 }", 4)
  end
  local def = augs[o[1]]
  if not def then error(where .. ": unknown augmentation '" .. o[1] .. "' (known: " .. aug_names .. ")", 4) end
  local name, opts = o[1], def[2]
  for key in pairs(o) do
    if key ~= 1 and opts[key] == nil then
      local known = {}
      for n in pairs(opts) do known[#known + 1] = n end
      table.sort(known)
      error(where .. " (" .. name .. "): unknown option '" .. tostring(key) .. "' (it takes: " .. table.concat(known, ", ") .. ")", 4)
    end
  end
  local v = {}
  for key, d in pairs(opts) do
    v[key] = o[key]
    if v[key] == nil then
      if d == false then error(where .. " (" .. name .. "): option '" .. key .. "' is required", 4) end
      v[key] = d
    end
  end
  if name == "noise" and (o.sigma == nil) == (o.snr_db == nil) then
    error(where .. " (noise): give exactly one of sigma (mV) or snr_db", 4)
  end
  a.kind = def[1]
  if name == "crop" then a.length = v.length
  elseif name == "lead_mask" then a.p = v.p
  elseif name == "noise" then a.sigma, a.snr_db = v.sigma, v.snr_db
  elseif name == "wander" then a.amplitude, a.fmin, a.fmax, a.count = v.amplitude, v.fmin, v.fmax, v.count
  elseif name == "scale" then a.lo, a.hi = v.lo, v.hi
  elseif name == "shift" then a.max_shift, a.circular = v.max, v.circular and 1 or 0
  end
end

local known = { batch = true, shuffle = true, seed = true, epochs = true, start_epoch = true, drop_last = true,
  split = true, label_set = true, workers = true, prefetch = true, augment = true, fs = true, same_priority = true }

function M.new(src, o)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("loader: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local spec = ffi.new("ewb_loader_spec")
  local anchors = {}
  if type(src) == "table" and src.handle ~= nil and type(src.file) == "string" then src = src.file end -- a wb.dataset
  if type(src) == "string" then
    spec.file = src
  elseif type(src) == "table" and src.signals ~= nil then
    spec.signals = wb.unwrap(src.signals)
    if src.labels ~= nil then spec.labels = wb.unwrap(src.labels) end
    spec.fs = src.fs or o.fs or 0
    anchors.x, anchors.y = src.signals, src.labels
  elseif wb.is_tensor(src) then
    spec.signals = src.ptr
    spec.fs = o.fs or 0
    anchors.x = src
  else
    error("loader: the source must be a dataset file, a wb.dataset, a tensor or { signals = x, labels = y }, got " .. type(src), 2)
  end
  spec.batch_size = o.batch or error("loader: option batch (the batch size) is required", 2)
  spec.shuffle = o.shuffle == false and 0 or 1
  spec.seed = o.seed or 0
  spec.epochs = o.epochs or 0
  spec.start_epoch = (o.start_epoch or 1) - 1
  spec.drop_last = o.drop_last and 1 or 0
  if o.split ~= nil then
    local s = type(o.split) == "table" and o.split or { o.split }
    anchors.splits = ffi.new("int32_t[?]", math.max(#s, 1), s)
    spec.splits, spec.nsplits = anchors.splits, #s
  end
  if o.label_set then spec.label_set = o.label_set end
  spec.threads = o.workers or 2
  spec.prefetch = o.prefetch or 0
  spec.same_priority = o.same_priority and 1 or 0
  local list = o.augment or {}
  if type(list) ~= "table" then error("loader: augment must be a list of { name, options... }", 2) end
  if #list > 0 then
    anchors.augs = ffi.new("ewb_loader_aug[?]", #list)
    for k, a in ipairs(list) do fill_aug(anchors.augs[k - 1], a, k) end
    spec.naug, spec.augs = #list, anchors.augs
  end
  I.check(C.ewb_loader_new(out, spec), 1)
  local self = setmetatable({ handle = ffi.gc(out[0], C.ewb_loader_close), _batch = ffi.new("ewb_loader_batch") }, Loader)
  local info = ffi.new("ewb_loader_info")
  I.check(C.ewb_loader_info_get(self.handle, info))
  self.n, self.batches = tonumber(info.records), tonumber(info.batches_per_epoch)
  self.leads, self.samples, self.nlabels, self.fs = tonumber(info.leads), tonumber(info.samples), tonumber(info.nlabels), info.fs
  self.batch_size = tonumber(spec.batch_size)
  return self
end

local function live(self, fn)
  if self.handle == nil then error("loader." .. fn .. ": the loader is closed", 3) end
end

local function take(p)
  if p == nil then return nil end
  return I.wrap(p)
end

function Loader:next()
  live(self, "next")
  local b = self._batch
  local rc = C.ewb_loader_next(self.handle, b)
  if rc == 1 then return nil end
  I.check(rc, 1)
  return {
    signals = take(b.signals), index = take(b.index), labels = take(b.labels), age = take(b.age), sex = take(b.sex),
    patient_id = take(b.patient_id), split = take(b.split),
    epoch = tonumber(b.epoch) + 1, batch = tonumber(b.batch) + 1, size = tonumber(b.size),
  }
end

-- the remaining batches of the current epoch
function Loader:epoch()
  live(self, "epoch")
  local done = false
  return function()
    if done then return nil end
    local b = self:next()
    if b == nil or b.batch == self.batches then done = true end
    return b
  end
end

function Loader:ready()
  live(self, "ready")
  return C.ewb_loader_ready(self.handle) ~= 0
end

function Loader:stats()
  live(self, "stats")
  local s = ffi.new("ewb_loader_stats")
  I.check(C.ewb_loader_stats_get(self.handle, s))
  return { taken = tonumber(s.taken), produced = tonumber(s.produced), max_ahead = tonumber(s.max_ahead),
    waits = tonumber(s.waits), wait_seconds = s.wait_seconds, work_seconds = s.work_seconds }
end

function Loader:close()
  if self.handle == nil then return end
  local h = ffi.gc(self.handle, nil)
  self.handle = nil
  C.ewb_loader_close(h)
end

function Loader:__tostring()
  if self.handle == nil then return "loader (closed)" end
  return string.format("loader: %d records, %d batches of %d per epoch, %d leads x %d samples",
    self.n, self.batches, self.batch_size, self.leads, self.samples)
end

return M
