--[[ ecgwb.wfdb: PhysioNet WFDB records and MIT annotations (core/wfdb.c).

  local r = wb.wfdb.read("data/100")                 -- physical (mV), f32 (nsig, n)
  r.signal, r.fs, r.sig_name[1], r.units[1], r.gain[1], r.baseline[1], r.comments
  local d = wb.wfdb.read("data/100", { physical = false, from = 1, to = 3600 })  -- i32 digital
  local h = wb.wfdb.header("data/100")               -- header fields only, no samples
  wb.wfdb.write("out/rec", { signal = x, fs = 500, sig_name = {"I", "II"}, fmt = 212, gain = 200 })
  local anns = wb.wfdb.rdann("data/100", "atr")      -- { {sample=18, symbol="+", aux="(N", ...}, ... }
  wb.wfdb.wrann("out/rec", "atr", anns)

read options:
  physical = true   f32 in the signals' units, NaN where invalid; false: i32
                    digital, wb.wfdb.INVALID where invalid
  highres = false   false: one value per frame (the mean of a frame's samples,
                    as rdsamp); true: max-spf values per frame, slower signals
                    repeated (rdsamp -H); r.fs is then the output rate
  from, to          first and last frame, 1-based and inclusive (default: all)
  strict_checksum   true: a checksum mismatch is an error; otherwise it only
                    shows as r.checksum_ok[i] == false (nil: not checked)
Annotation sample numbers are 0-based sample indices, as in the file and as
rdann prints them.
write: signal (nsig, n) f32 physical (digital = round(x * gain + baseline),
NaN -> invalid) or i32 digital; gain, baseline, units and adcres may be one
value or one per signal; fmt 16 (default) or 212; comments = {"..."}.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}
M.INVALID = -2147483648

local function str(field) return ffi.string(field) end

local function signal_table(s)
  return {
    file = str(s.file), fmt = s.fmt, spf = s.spf, skew = s.skew, offset = tonumber(s.offset),
    gain = s.gain, baseline = s.baseline, units = str(s.units), adcres = s.adcres, adczero = s.adczero,
    initval = s.initval, checksum = s.has_checksum ~= 0 and s.checksum or nil, blocksize = s.blocksize,
    name = str(s.desc),
  }
end

-- the C header as a Lua table
local function header_table(h)
  local r = {
    name = str(h.name), nsig = h.nsig, fs = h.fs, frame_fs = h.fs, nsamp = tonumber(h.nsamp),
    counter_freq = h.counter_freq > 0 and h.counter_freq or nil, base_counter = h.base_counter,
    base_time = str(h.base_time), base_date = str(h.base_date),
    comments = {}, signals = {}, segments = {}, variable_layout = h.variable_layout ~= 0,
    sig_name = {}, units = {}, gain = {}, baseline = {}, fmt = {}, spf = {}, checksum_ok = {},
  }
  for i = 0, h.ncomments - 1 do r.comments[i + 1] = ffi.string(h.comments[i]) end
  for i = 0, h.nseg - 1 do r.segments[i + 1] = { name = str(h.segs[i].name), nsamp = tonumber(h.segs[i].nsamp) } end
  for i = 0, h.nsig - 1 do
    local s = signal_table(h.sigs[i])
    r.signals[i + 1] = s
    r.sig_name[i + 1], r.units[i + 1], r.gain[i + 1], r.baseline[i + 1] = s.name, s.units, s.gain, s.baseline
    r.fmt[i + 1], r.spf[i + 1] = s.fmt, s.spf
    local ok = h.sigs[i].checksum_ok
    if ok >= 0 then r.checksum_ok[i + 1] = ok == 1 end
  end
  return r
end

local hdr_out = ffi.new("ewb_wfdb_header*[1]")

local function need_string(v, what, fn)
  if type(v) ~= "string" then error("wfdb." .. fn .. ": " .. what .. " must be a string, got " .. type(v), 3) end
end

function M.header(record)
  need_string(record, "record path", "header")
  I.check(C.ewb_wfdb_header_read(record, hdr_out), 1)
  local h = hdr_out[0]
  local ok, r = pcall(header_table, h)
  C.ewb_wfdb_header_free(h)
  if not ok then error(r, 2) end
  return r
end

local read_known = { physical = true, highres = true, from = true, to = true, strict_checksum = true }

function M.read(record, o)
  need_string(record, "record path", "read")
  o = o or {}
  for k in pairs(o) do
    if not read_known[k] then error("wfdb.read: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local from, to = o.from or 1, o.to or 0
  if from < 1 or (o.to and to < from) then
    error(string.format("wfdb.read: frames from=%s to=%s: need 1 <= from <= to", tostring(o.from), tostring(o.to)), 2)
  end
  local opts = ffi.new("ewb_wfdb_read_opts", {
    physical = o.physical == false and 0 or 1,
    mode = o.highres and C.EWB_WFDB_HIGHRES or C.EWB_WFDB_LOWRES,
    start = from - 1, stop = to, strict_checksum = o.strict_checksum and 1 or 0 })
  I.check(C.ewb_wfdb_read(record, opts, I.out1, hdr_out), 1)
  local sig, h = I.wrap(I.out1[0]), hdr_out[0]
  local ok, r = pcall(header_table, h)
  C.ewb_wfdb_header_free(h)
  if not ok then error(r, 2) end
  r.signal = sig
  if o.highres then
    local m = 1
    for _, s in ipairs(r.spf) do m = math.max(m, s) end
    r.fs = r.frame_fs * m
  end
  return r
end

local function per_signal(v, i, default)
  if type(v) == "table" then return v[i] == nil and default or v[i] end
  if v == nil then return default end
  return v
end

local function set_chars(field, size, s, what)
  s = tostring(s)
  if #s >= size then error("wfdb.write: " .. what .. " '" .. s .. "' is longer than " .. (size - 1) .. " characters", 4) end
  ffi.copy(field, s)
end

local write_known = { signal = true, fs = true, sig_name = true, units = true, fmt = true, gain = true,
  baseline = true, adcres = true, comments = true, base_time = true, base_date = true }

function M.write(record, o)
  need_string(record, "record path", "write")
  if type(o) ~= "table" then error("wfdb.write: options table {signal=, fs=, ...} expected", 2) end
  for k in pairs(o) do
    if not write_known[k] then error("wfdb.write: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local x = o.signal
  if not wb.is_tensor(x) or x:dim() ~= 2 then error("wfdb.write: signal must be a 2-D tensor (nsig, n)", 2) end
  if type(o.fs) ~= "number" then error("wfdb.write: fs (Hz) is required", 2) end
  local nsig = x:size(1)
  local h = ffi.new("ewb_wfdb_header")
  local sigs = ffi.new("ewb_wfdb_signal[?]", nsig)
  h.nsig, h.fs, h.sigs = nsig, o.fs, sigs
  if o.base_time then set_chars(h.base_time, 32, o.base_time, "base_time") end
  if o.base_date then set_chars(h.base_date, 32, o.base_date, "base_date") end
  local fmt = o.fmt or 16
  for i = 1, nsig do
    local s = sigs[i - 1]
    s.fmt = fmt
    s.spf = 1
    s.gain = per_signal(o.gain, i, 200)
    s.baseline = per_signal(o.baseline, i, 0)
    s.adcres = per_signal(o.adcres, i, 0)
    set_chars(s.units, 32, per_signal(o.units, i, "mV"), "units")
    set_chars(s.desc, 128, per_signal(o.sig_name, i, "signal " .. i), "signal name")
  end
  local keep = {}
  local comments = o.comments or {}
  local cp = ffi.new("char*[?]", math.max(#comments, 1))
  for i, c in ipairs(comments) do
    keep[i] = tostring(c)
    cp[i - 1] = ffi.cast("char*", keep[i])
  end
  h.ncomments, h.comments = #comments, cp
  -- (the locals h, sigs, cp and keep anchor the memory h points to during the call)
  I.check(C.ewb_wfdb_write(record, h, x.ptr), 1)
end

-- annotations ---------------------------------------------------------------

local ann_out = ffi.new("ewb_wfdb_annotation*[1]")
local n_out = ffi.new("int64_t[1]")

function M.symbol(code)
  local s = C.ewb_wfdb_ann_symbol(code)
  return s ~= nil and ffi.string(s) or nil
end
function M.code(symbol)
  local c = C.ewb_wfdb_ann_code(symbol)
  return c >= 0 and c or nil
end

local function ann_file(record, ext)
  need_string(record, "record path", "rdann")
  if ext == nil then return record end
  need_string(ext, "annotator extension", "rdann")
  return record .. "." .. ext
end

-- list of {sample, symbol, type, subtype, chan, num, aux}; .samples is an i64
-- tensor of the sample numbers
function M.rdann(record, ext)
  local file = ann_file(record, ext)
  I.check(C.ewb_wfdb_rdann(file, ann_out, n_out), 1)
  local a, n = ann_out[0], tonumber(n_out[0])
  local r = {}
  local samples = ffi.new("int64_t[?]", math.max(n, 1))
  for i = 0, n - 1 do
    local x = a[i]
    r[i + 1] = { sample = tonumber(x.sample), type = x.type, symbol = M.symbol(x.type) or tostring(x.type),
      subtype = x.subtype, chan = x.chan, num = x.num, aux = ffi.string(x.aux) }
    samples[i] = x.sample
  end
  C.ewb_wfdb_ann_free(a)
  r.samples = I.new1(C.ewb_tensor_from_data, C.EWB_DTYPE_I64, 1, ffi.new("int64_t[1]", n), samples)
  return r
end

-- anns: list of {sample=, symbol= or type=, subtype=, chan=, num=, aux=}.
-- aux strings are stored with a trailing NUL, as the MIT files have them.
function M.wrann(record, ext, anns)
  if anns == nil and type(ext) == "table" then ext, anns = nil, ext end
  local file = ann_file(record, ext)
  if type(anns) ~= "table" then error("wfdb.wrann: a list of annotations expected", 2) end
  local n = #anns
  local a = ffi.new("ewb_wfdb_annotation[?]", math.max(n, 1))
  for i, x in ipairs(anns) do
    local t = a[i - 1]
    local ty = x.type or (x.symbol and M.code(x.symbol))
    if not ty then error("wfdb.wrann: annotation " .. i .. ": unknown symbol '" .. tostring(x.symbol) .. "'", 2) end
    if type(x.sample) ~= "number" then error("wfdb.wrann: annotation " .. i .. " has no sample", 2) end
    t.sample, t.type = x.sample, ty
    t.subtype, t.chan, t.num = x.subtype or 0, x.chan or 0, x.num or 0
    local aux = x.aux or ""
    if #aux > 254 then error("wfdb.wrann: annotation " .. i .. ": aux longer than 254 bytes", 2) end
    if #aux > 0 then
      ffi.copy(t.aux, aux)
      t.aux_len = #aux + 1
    end
  end
  I.check(C.ewb_wfdb_wrann(file, a, n), 1)
end

return M
