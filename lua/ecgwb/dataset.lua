--[[ ecgwb.dataset: ECG datasets in HDF5 (core/dataset.c; the layout is in data/README.md).

  local ds = wb.dataset.create("train.h5", { fs = 500, leads = 12, samples = 5000,
                                            labels = { "AF", "RBBB" }, units = "mV" })
  ds:append { signals = x,                      -- (n, 12, 5000) f32, or (12, 5000) for one record
              labels = { { "AF" }, {} },        -- label names per record, or an (n, L) tensor of 0/1
              ids = { "a1", "a2" }, reports = { "atrial fibrillation", "normal" },
              patient_id = { 7, 8 }, age = { 63, 40 }, sex = { 1, 0 }, split = { 1, 2 } }
  ds:close()

  local ds = wb.dataset.open("train.h5")        -- read-only; open(file, "a") to append
  ds.n, ds.fs, ds.leads, ds.samples, ds.label_names, ds.units
  local x = ds:read(1)                          -- (12, 5000): record 1 (1-based; -1 is the last)
  local xs = ds:read(11, 20)                    -- (10, 12, 5000): records 11..20
  ds:labels(11, 20)                             -- (10, L) bool
  ds:labels(11, 20, "superclass")               -- a named label set (ds.label_sets, ds.set_label_names[set])
  ds:field("age", 11, 20)                       -- f32 (10); "patient_id" i64, "sex" / "split" i32
  ds:ids(11, 20), ds:reports(11, 20)            -- Lua lists of strings
  ds:record(3)                                  -- { signal, id, report, patient_id, age, sex, split, labels = {names} }
  for b in ds:batches(64) do ... b.signals, b.labels, b.first, b.last ... end

Named label sets besides `labels` (stored as labels_<set> and label_names_<set>):
  wb.dataset.create(file, { ..., label_sets = { { name = "superclass", labels = { "CD", "MI", "NORM" } }, ... } })
  ds:append { ..., label_sets = { superclass = { { "MI" }, {} } } }   -- per set: names per record, or an (n, L) tensor

Strings are UTF-8; sex is 0 female, 1 male, -1 unknown; an unknown age is NaN.
wb.dataset.read_csv(file) reads a CSV file (quoted fields, "" escapes,
newlines inside quotes) into a header list and rows keyed by column name;
the importers under data/ use it.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}
local Dataset = {}
Dataset.__index = Dataset

local dsout = ffi.new("ewb_dataset*[1]")
local needed = ffi.new("int64_t[1]")

local function close_handle(h) C.ewb_dataset_close(h) end

-- a C array of n strings (the Lua strings stay referenced by `list`)
local function cstrings(list, n, what, fn)
  local a = ffi.new("const char*[?]", math.max(n, 1))
  for i = 1, n do
    local s = list[i]
    if type(s) == "number" then s = tostring(s); list[i] = s end
    if type(s) ~= "string" then error(fn .. ": " .. what .. " " .. i .. " must be a string, got " .. type(s), 3) end
    a[i - 1] = s
  end
  return a
end

-- fills the Lua fields from the C handle
local function refresh(ds)
  local info = ffi.new("ewb_dataset_info")
  I.check(C.ewb_dataset_info_get(ds.handle, info))
  ds.n, ds.samples, ds.fs = tonumber(info.n), tonumber(info.samples), info.fs
  ds.nlabels, ds.int16, ds.gain, ds.writable = tonumber(info.nlabels), info.int16 ~= 0, info.gain, info.writable ~= 0
  ds.file = ffi.string(C.ewb_dataset_file(ds.handle))
  ds.units = ffi.string(C.ewb_dataset_units(ds.handle))
  ds.leads = {}
  for i = 0, tonumber(info.leads) - 1 do ds.leads[i + 1] = ffi.string(C.ewb_dataset_lead_name(ds.handle, i)) end
  ds.label_names, ds.label_index = {}, {}
  for i = 0, ds.nlabels - 1 do
    local name = ffi.string(C.ewb_dataset_label_name(ds.handle, i))
    ds.label_names[i + 1] = name
    ds.label_index[name] = i + 1
  end
  ds.label_sets, ds.set_label_names, ds.set_label_index = {}, {}, {}
  for k = 0, tonumber(info.nsets) - 1 do
    local set = ffi.string(C.ewb_dataset_set_name(ds.handle, k))
    local names, index = {}, {}
    for i = 0, tonumber(C.ewb_dataset_set_nlabels(ds.handle, k)) - 1 do
      names[i + 1] = ffi.string(C.ewb_dataset_set_label_name(ds.handle, k, i))
      index[names[i + 1]] = i + 1
    end
    ds.label_sets[k + 1], ds.set_label_names[set], ds.set_label_index[set] = set, names, index
  end
  return ds
end

local function new_handle(h)
  return refresh(setmetatable({ handle = ffi.gc(h, close_handle) }, Dataset))
end

local known_create = { fs = true, leads = true, samples = true, labels = true, units = true, dtype = true, gain = true,
  compression = true, label_sets = true }

function M.create(file, o)
  if type(file) ~= "string" then error("dataset.create: file must be a string, got " .. type(file), 2) end
  o = o or {}
  for k in pairs(o) do
    if not known_create[k] then error("dataset.create: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local spec = ffi.new("ewb_dataset_spec")
  spec.fs = o.fs or error("dataset.create: option fs (Hz) is required", 2)
  spec.samples = o.samples or error("dataset.create: option samples is required", 2)
  local anchors = {}
  local leads = o.leads or 12
  if type(leads) == "table" then
    spec.leads = #leads
    anchors.leads = cstrings(leads, #leads, "lead name", "dataset.create")
    spec.lead_names = anchors.leads
  else
    spec.leads = leads
  end
  local labels = o.labels or {}
  spec.nlabels = #labels
  anchors.labels = cstrings(labels, #labels, "label name", "dataset.create")
  spec.label_names = anchors.labels
  local sets = o.label_sets or {}
  if type(sets) ~= "table" then error("dataset.create: label_sets must be a list of {name = ..., labels = {...}}", 2) end
  if #sets > 0 then
    anchors.sets = ffi.new("ewb_dataset_label_set[?]", #sets)
    for k, st in ipairs(sets) do
      if type(st) ~= "table" or type(st.name) ~= "string" or type(st.labels) ~= "table" then
        error("dataset.create: label_sets[" .. k .. "] must be {name = \"...\", labels = {...}}", 2)
      end
      anchors[#anchors + 1] = cstrings(st.labels, #st.labels, "label name", "dataset.create")
      anchors.sets[k - 1].name = st.name
      anchors.sets[k - 1].nlabels = #st.labels
      anchors.sets[k - 1].label_names = anchors[#anchors]
    end
    spec.nsets, spec.sets = #sets, anchors.sets
  end
  if o.units then spec.units = o.units end
  local dtype = o.dtype or "f32"
  if dtype ~= "f32" and dtype ~= "int16" then error("dataset.create: dtype must be 'f32' or 'int16', got " .. tostring(dtype), 2) end
  spec.int16 = dtype == "int16" and 1 or 0
  spec.gain = o.gain or (dtype == "int16" and 1000 or 1)
  spec.compression = o.compression or -1
  I.check(C.ewb_dataset_create(dsout, file, spec), 1)
  return new_handle(dsout[0])
end

function M.open(file, mode)
  if type(file) ~= "string" then error("dataset.open: file must be a string, got " .. type(file), 2) end
  mode = mode or "r"
  if mode ~= "r" and mode ~= "a" then error("dataset.open: mode must be 'r' or 'a', got " .. tostring(mode), 2) end
  I.check(C.ewb_dataset_open(dsout, file, mode == "a" and 1 or 0), 1)
  return new_handle(dsout[0])
end

function Dataset:size() return self.n end

function Dataset:close()
  if self.handle == nil then return end
  local h = ffi.gc(self.handle, nil)
  self.handle = nil
  I.check(C.ewb_dataset_close(h), 1)
end

local function live(ds, fn)
  if ds.handle == nil then error("dataset." .. fn .. ": the dataset is closed", 3) end
end

-- a per-record numeric field: tensor, Lua list, or a number for one record
local function numeric(v, n, what, dtype)
  if v == nil then return nil end
  if type(v) == "number" then v = { v } end
  if type(v) == "table" then
    if #v ~= n then error("dataset.append: " .. what .. " has " .. #v .. " values for " .. n .. " records", 3) end
    return wb.tensor(v, dtype)
  end
  if wb.is_tensor(v) then return v end
  error("dataset.append: " .. what .. " must be a tensor or a list of numbers, got " .. type(v), 3)
end

-- labels: an (n, L) tensor, or a list (one per record) of lists of label names;
-- set: the name of a label set, nil for `labels`
function Dataset:_labels(v, n, single, set)
  if v == nil or wb.is_tensor(v) then return v end
  local what = set and "label set '" .. set .. "'" or "labels"
  if type(v) ~= "table" then error("dataset.append: " .. what .. " must be a tensor or lists of label names, got " .. type(v), 3) end
  if single then v = { v } end
  if #v ~= n then error("dataset.append: " .. what .. " has " .. #v .. " entries for " .. n .. " records", 3) end
  local index = set and self.set_label_index[set] or self.label_index
  local L = set and #self.set_label_names[set] or self.nlabels
  local p = ffi.new("uint8_t[?]", math.max(n * L, 1))
  for i = 1, n do
    local names = v[i]
    if type(names) == "string" then names = { names } end
    if type(names) ~= "table" then error("dataset.append: labels of record " .. i .. " must be a list of names", 3) end
    for _, name in ipairs(names) do
      local j = index[name]
      if not j then
        error("dataset.append: '" .. self.file .. "' has no label '" .. tostring(name) .. "'" ..
          (set and " in set '" .. set .. "'" or "") .. " (record " .. i .. ")", 3)
      end
      p[(i - 1) * L + j - 1] = 1
    end
  end
  return I.new1(C.ewb_tensor_from_data, C.EWB_DTYPE_BOOL, 2, ffi.new("int64_t[2]", n, L), p)
end

function Dataset:append(b)
  live(self, "append")
  if type(b) ~= "table" then error("dataset.append: expected a table {signals = ..., ...}, got " .. type(b), 2) end
  local x = b.signals
  if not wb.is_tensor(x) then error("dataset.append: signals must be a tensor, got " .. type(x), 2) end
  local single = x:dim() == 2
  if single then x = x:unsqueeze(1) end
  local n = x:size(1)
  local function list(v, what)
    if v == nil then return nil end
    if single and type(v) ~= "table" then v = { v } end
    if type(v) ~= "table" then error("dataset.append: " .. what .. " must be a list of strings", 3) end
    if #v ~= n then error("dataset.append: " .. what .. " has " .. #v .. " entries for " .. n .. " records", 3) end
    local copy = {}
    for i = 1, n do copy[i] = v[i] end
    return copy
  end
  local ids, reports = list(b.ids or b.id, "ids"), list(b.reports or b.report, "reports")
  local batch = ffi.new("ewb_dataset_batch")
  local keep = {
    x = x,
    labels = self:_labels(b.labels, n, single),
    patient_id = numeric(b.patient_id, n, "patient_id", "i64"),
    age = numeric(b.age, n, "age", "f32"),
    sex = numeric(b.sex, n, "sex", "i32"),
    split = numeric(b.split, n, "split", "i32"),
  }
  batch.signals = x.ptr
  for _, k in ipairs { "labels", "patient_id", "age", "sex", "split" } do
    if keep[k] then batch[k] = keep[k].ptr end
  end
  if b.label_sets ~= nil then
    if type(b.label_sets) ~= "table" then error("dataset.append: label_sets must be a table {set = labels, ...}", 2) end
    local names, tensors = {}, {}
    for set, v in pairs(b.label_sets) do
      if not self.set_label_index[set] then
        error("dataset.append: '" .. self.file .. "' has no label set '" .. tostring(set) .. "'", 2)
      end
      names[#names + 1] = set
      tensors[#tensors + 1] = self:_labels(v, n, single, set)
    end
    keep.set_names, keep.set_tensors = names, tensors
    keep.set_names_c = cstrings(names, #names, "label set", "dataset.append")
    keep.set_labels_c = ffi.new("const ewb_tensor*[?]", math.max(#names, 1))
    for k, t in ipairs(tensors) do keep.set_labels_c[k - 1] = t.ptr end
    batch.nsets, batch.set_names, batch.set_labels = #names, keep.set_names_c, keep.set_labels_c
  end
  if ids then keep.ids = cstrings(ids, n, "id", "dataset.append"); batch.ids = keep.ids end
  if reports then keep.reports = cstrings(reports, n, "report", "dataset.append"); batch.reports = keep.reports end
  local rc = C.ewb_dataset_append(self.handle, batch)
  keep.ids_list, keep.reports_list = ids, reports -- anchors until after the call
  I.check(rc, 1)
  self.n = tonumber(C.ewb_dataset_size(self.handle))
  return self
end

-- 1-based (negative from the end) i..j -> 0-based start, count
local function range(ds, i, j, fn)
  i = i or 1
  j = j or i
  if i < 0 then i = ds.n + 1 + i end
  if j < 0 then j = ds.n + 1 + j end
  if i < 1 or j > ds.n or j < i - 1 then
    error(string.format("dataset.%s: '%s': records %d..%d are out of range (1..%d)", fn, ds.file, i, j, ds.n), 3)
  end
  return i - 1, j - i + 1
end

function Dataset:read(i, j)
  live(self, "read")
  local start, count = range(self, i, j, "read")
  I.check(C.ewb_dataset_read(self.handle, start, count, I.out1), 1)
  local t = I.wrap(I.out1[0])
  if j == nil then return t:view(#self.leads, self.samples) end
  return t
end

-- (n, L) bool; set: a label set's name (nil: `labels`)
function Dataset:labels(i, j, set)
  live(self, "labels")
  local start, count = range(self, i, j, "labels")
  if set ~= nil and type(set) ~= "string" then error("dataset.labels: set must be a string, got " .. type(set), 2) end
  I.check(C.ewb_dataset_read_set_labels(self.handle, set, start, count, I.out1), 1)
  return I.wrap(I.out1[0])
end

function Dataset:field(name, i, j)
  live(self, "field")
  local start, count = range(self, i, j, "field")
  I.check(C.ewb_dataset_read_field(self.handle, name, start, count, I.out1), 1)
  return I.wrap(I.out1[0])
end

local strbuf, strcap = nil, 0
function Dataset:_strings(field, i, j)
  live(self, field)
  local start, count = range(self, i, j, field)
  while true do
    I.check(C.ewb_dataset_read_strings(self.handle, field, start, count, strbuf, strcap, needed), 2)
    local need = tonumber(needed[0])
    if need <= strcap then
      local out, pos = {}, 0
      for k = 1, count do
        local s = ffi.string(strbuf + pos)
        out[k] = s
        pos = pos + #s + 1
      end
      return out
    end
    strcap = math.max(need, 2 * strcap)
    strbuf = ffi.new("char[?]", strcap)
  end
end
function Dataset:ids(i, j) return self:_strings("id", i, j) end
function Dataset:reports(i, j) return self:_strings("reports", i, j) end

-- everything about record i; fields the file lacks are left out
function Dataset:record(i)
  live(self, "record")
  local r = { signal = self:read(i) }
  local function try(f) local ok, v = pcall(f); if ok then return v end end
  r.id = try(function() return self:ids(i)[1] end)
  r.report = try(function() return self:reports(i)[1] end)
  for _, f in ipairs { "patient_id", "age", "sex", "split" } do
    r[f] = try(function() return self:field(f, i):get(1) end)
  end
  local function names_of(l, names)
    local out = {}
    for k = 1, #names do
      if l[k] ~= 0 then out[#out + 1] = names[k] end
    end
    return out
  end
  r.labels = self.nlabels > 0 and names_of(self:labels(i):totable(), self.label_names) or {}
  r.label_sets = {}
  for _, set in ipairs(self.label_sets) do
    r.label_sets[set] = names_of(self:labels(i, i, set):totable(), self.set_label_names[set])
  end
  return r
end

-- sequential batches: for b in ds:batches(64, {strings = true, drop_last = false}) do
-- b.signals (n, leads, samples), b.labels (n, L), b.first, b.last (1-based);
-- with strings = true also b.ids and b.reports; with label_sets = true also
-- b.label_sets[set] (n, L) for every label set
function Dataset:batches(size, o)
  live(self, "batches")
  o = o or {}
  size = size or 32
  if size < 1 then error("dataset.batches: batch size must be >= 1, got " .. tostring(size), 2) end
  local first = 1
  return function()
    if first > self.n then return nil end
    local last = math.min(first + size - 1, self.n)
    if o.drop_last and last - first + 1 < size then return nil end
    local b = { first = first, last = last, signals = self:read(first, last), labels = self:labels(first, last) }
    if o.strings then b.ids, b.reports = self:ids(first, last), self:reports(first, last) end
    if o.label_sets then
      b.label_sets = {}
      for _, set in ipairs(self.label_sets) do b.label_sets[set] = self:labels(first, last, set) end
    end
    first = last + 1
    return b
  end
end

function Dataset:__tostring()
  if self.handle == nil then return "dataset (closed)" end
  local sets = #self.label_sets > 0 and ", label sets " .. table.concat(self.label_sets, " ") or ""
  return string.format("dataset '%s': %d records, %d leads x %d samples at %g Hz, %d labels%s", self.file, self.n,
    #self.leads, self.samples, self.fs, self.nlabels, sets)
end

------------------------------------------------------------------ CSV

-- header (list of names) and rows (list of tables keyed by column name)
function M.read_csv(file)
  local f, err = io.open(file, "rb")
  if not f then error("read_csv: cannot open " .. tostring(err), 2) end
  local s = f:read("*a")
  f:close()
  if s:sub(1, 3) == "\239\187\191" then s = s:sub(4) end -- UTF-8 BOM
  local records, fields, pos, n, line = {}, {}, 1, #s, 1
  while pos <= n do
    local c = s:sub(pos, pos)
    if c == '"' then
      local buf, p = {}, pos + 1
      while true do
        local q = s:find('"', p, true)
        if not q then error(string.format("read_csv: '%s': unterminated quoted field starting on line %d", file, line), 2) end
        buf[#buf + 1] = s:sub(p, q - 1)
        if s:sub(q + 1, q + 1) == '"' then buf[#buf + 1] = '"'; p = q + 2 else p = q + 1; break end
      end
      local field = table.concat(buf)
      for _ in field:gmatch("\n") do line = line + 1 end
      fields[#fields + 1] = field
      pos = p
    else
      local q = s:find("[,\r\n]", pos)
      fields[#fields + 1] = s:sub(pos, (q or n + 1) - 1)
      pos = q or n + 1
    end
    local d = s:sub(pos, pos)
    if d == "," then
      pos = pos + 1
      if pos > n then fields[#fields + 1] = "" end
    elseif d == "\r" or d == "\n" or pos > n then
      if d == "\r" and s:sub(pos + 1, pos + 1) == "\n" then pos = pos + 1 end
      pos = pos + 1
      line = line + 1
      if not (#fields == 1 and fields[1] == "") then records[#records + 1] = fields end
      fields = {}
    else
      error(string.format("read_csv: '%s': line %d: unexpected character after a quoted field", file, line), 2)
    end
  end
  if #fields > 0 then records[#records + 1] = fields end
  if #records == 0 then error("read_csv: '" .. file .. "' is empty", 2) end
  local header, rows = records[1], {}
  for r = 2, #records do
    local rec = records[r]
    if #rec ~= #header then
      error(string.format("read_csv: '%s': record %d has %d fields, the header has %d", file, r, #rec, #header), 2)
    end
    local row = {}
    for k = 1, #header do row[header[k]] = rec[k] end
    rows[#rows + 1] = row
  end
  return header, rows
end

M.Dataset = Dataset
return M
