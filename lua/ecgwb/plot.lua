--[[ ecgwb.plot: figures (core/plot.c, cairo) from Lua.

  wb.plot.ecg(x, { fs = 500, file = "a.png" })          -- 12-lead: 3 × 4 + lead II rhythm strip; x (12, n) in mV
  wb.plot.strips(x, { fs = 500, markers = rpeaks })     -- stacked strips; x (n) or (L, n)
  wb.plot.pair(real, gen, { fs = 500, names = { "real", "generated" }, overlay = false })
  wb.plot.lines({ train = losses, val = { x = steps, y = vl } }, { logy = true, xlabel = "step" })
  wb.plot.scatter(x, y, { xlabel = "true HR", ylabel = "measured HR" })

Every figure function writes `file` (.png or .svg) and returns file, width,
height; without `file` it returns the bytes ("png" by default, or
format = "svg" or "argb32", raw 0xAARRGGBB pixels), width, height. Widths are
pixels for PNG (at `dpi`, default 100) and millimetres for SVG.
wb.plot.base64(bytes) and wb.plot.data_uri(png) embed a PNG in HTML.

ECG options: fs (Hz, required), speed (mm/s, 25), gain (mm/mV, 10), row (mm
between baselines), start (s), seconds (strips), title, leads (names),
rhythm (lead name, "II"; false = none), markers (0-based sample positions,
a tensor or a table), marker_labels, marker_lead (name; default every lead),
names (pair: two names), overlay (pair). Chart options: title, xlabel,
ylabel, logy, width and height (mm).
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

local output_keys = { file = true, format = true, dpi = true }
local ecg_keys = { fs = true, speed = true, gain = true, row = true, start = true, seconds = true, title = true,
  leads = true, rhythm = true, markers = true, marker_labels = true, marker_lead = true, names = true,
  overlay = true }
local chart_keys = { title = true, xlabel = true, ylabel = true, logy = true, width = true, height = true }

local function check_keys(op, o, allowed)
  for k in pairs(o) do
    if not allowed[k] and not output_keys[k] then error(op .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
end

local function as_tensor(x, dtype)
  if wb.is_tensor(x) then return x end
  if type(x) == "table" then return wb.tensor(x, dtype) end
  error("expected a tensor or a table of numbers, got " .. type(x), 3)
end

-- a `const char *[n]`; the Lua strings stay referenced by `keep`
local function cstrings(list, keep, what)
  local arr = ffi.new("const char *[?]", #list + 1)
  for i, s in ipairs(list) do
    if type(s) ~= "string" then error(what .. " must be strings, got " .. type(s) .. " at " .. i, 3) end
    keep[#keep + 1] = s
    arr[i - 1] = s
  end
  keep[#keep + 1] = arr
  return arr
end

-- calls the C function f(..., out) and returns file or bytes, width, height
local function emit(o, f, ...)
  local out = ffi.new("ewb_plot_output")
  out.file = o.file
  out.format = o.format
  out.dpi = o.dpi or 0
  local args, n = { ... }, select("#", ...)
  args[n + 1] = out
  I.check(f(unpack(args, 1, n + 1)), 2)
  local w, h = tonumber(out.width), tonumber(out.height)
  if o.file then return o.file, w, h end
  local bytes = ffi.string(out.data, out.nbytes)
  C.ewb_plot_free(out.data)
  return bytes, w, h
end

-- nleads: how many lead names the C side will read
local function ecg_opts(op, o, keep, nleads)
  if type(o) ~= "table" then error(op .. ": an options table with fs is required", 3) end
  check_keys(op, o, ecg_keys)
  local c = ffi.new("ewb_plot_ecg_opts")
  c.fs = o.fs or 0
  c.speed, c.gain, c.row = o.speed or 0, o.gain or 0, o.row or 0
  c.start, c.seconds = o.start or 0, o.seconds or 0
  c.title = o.title
  if o.leads then
    if type(o.leads) ~= "table" or #o.leads ~= nleads then
      error(op .. ": leads must name all " .. nleads .. " leads", 3)
    end
    c.leads = cstrings(o.leads, keep, op .. ": leads")
  end
  if o.rhythm == false then c.rhythm = "" else c.rhythm = o.rhythm end
  if o.markers then
    local m = as_tensor(o.markers, "i64")
    keep[#keep + 1] = m
    c.markers = m.ptr
  end
  if o.marker_labels then
    local m = o.markers and (wb.is_tensor(o.markers) and o.markers:numel() or #o.markers) or 0
    if type(o.marker_labels) ~= "table" or #o.marker_labels ~= m then
      error(op .. ": marker_labels needs one label per marker (" .. m .. ")", 3)
    end
    c.marker_labels = cstrings(o.marker_labels, keep, op .. ": marker_labels")
  end
  c.marker_lead = o.marker_lead
  if o.names then c.name1, c.name2 = o.names[1], o.names[2] end
  c.overlay = o.overlay and 1 or 0
  keep[#keep + 1] = o
  return c
end

function M.ecg(x, o)
  local keep = {}
  local c = ecg_opts("plot.ecg", o, keep, 12)
  return emit(o, C.ewb_plot_ecg12, as_tensor(x).ptr, c)
end

function M.strips(x, o)
  local keep = {}
  x = as_tensor(x)
  local c = ecg_opts("plot.strips", o, keep, x:dim() == 2 and x:size(1) or 1)
  return emit(o, C.ewb_plot_strips, x.ptr, c)
end

function M.pair(a, b, o)
  local keep = {}
  local c = ecg_opts("plot.pair", o, keep, 12)
  return emit(o, C.ewb_plot_ecg_pair, as_tensor(a).ptr, as_tensor(b).ptr, c)
end

-- series: a tensor or a table of numbers (one series); a list of
-- { y = ..., x = ..., name = ... }; or a map name -> y or name -> { x =, y = }
local function normalise_series(series)
  if wb.is_tensor(series) or (type(series) == "table" and type(series[1]) == "number") then
    return { { y = series } }
  end
  if type(series) ~= "table" then error("plot.lines: series must be a tensor or a table, got " .. type(series), 3) end
  if #series > 0 then return series end
  local names, list = {}, {}
  for k in pairs(series) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(names) do
    local s = series[k]
    if type(s) == "table" and not wb.is_tensor(s) and s.y then list[#list + 1] = { x = s.x, y = s.y, name = tostring(k) }
    else list[#list + 1] = { y = s, name = tostring(k) } end
  end
  return list
end

local function chart(op, series, o, points)
  o = o or {}
  check_keys(op, o, chart_keys)
  local list = normalise_series(series)
  if #list == 0 then error(op .. ": no series to plot", 2) end
  local keep = { o }
  local cs = ffi.new("ewb_plot_series[?]", #list)
  for i, s in ipairs(list) do
    if type(s) ~= "table" or wb.is_tensor(s) or s.y == nil then
      error(op .. ": series " .. i .. " must be a table { y = ..., x = ..., name = ... }", 2)
    end
    local y = as_tensor(s.y, "f32")
    keep[#keep + 1] = y
    cs[i - 1].y = y.ptr
    if s.x ~= nil then
      local x = as_tensor(s.x, "f32")
      keep[#keep + 1] = x
      cs[i - 1].x = x.ptr
    end
    if s.name ~= nil then
      keep[#keep + 1] = tostring(s.name)
      cs[i - 1].name = keep[#keep]
    end
  end
  local c = ffi.new("ewb_plot_chart_opts")
  c.title, c.xlabel, c.ylabel = o.title, o.xlabel, o.ylabel
  c.logy = o.logy and 1 or 0
  c.points = points and 1 or 0
  c.width, c.height = o.width or 0, o.height or 0
  return emit(o, C.ewb_plot_lines, cs, #list, c)
end

function M.lines(series, o) return chart("plot.lines", series, o, false) end

local function is_values(v) return wb.is_tensor(v) or (type(v) == "table" and type(v[1]) == "number") end

-- scatter(x, y, opts) for one cloud, or scatter(series, opts) as for lines
function M.scatter(x, y, o)
  if is_values(y) then return chart("plot.scatter", { { x = x, y = y } }, o, true) end
  return chart("plot.scatter", x, y, true)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64chars = {}
for i = 1, 64 do b64chars[i - 1] = B64:sub(i, i) end

-- standard base64 (RFC 4648) with = padding
function M.base64(s)
  if type(s) ~= "string" then error("plot.base64: expected a string of bytes, got " .. type(s), 2) end
  local bit = require "bit"
  local band, rshift, lshift, bor = bit.band, bit.rshift, bit.lshift, bit.bor
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = bor(lshift(a, 16), lshift(b, 8), c)
    out[#out + 1] = b64chars[rshift(v, 18)] .. b64chars[band(rshift(v, 12), 63)] .. b64chars[band(rshift(v, 6), 63)] ..
        b64chars[band(v, 63)]
  end
  local r = n % 3
  if r == 1 then
    local v = lshift(s:byte(n), 16)
    out[#out + 1] = b64chars[rshift(v, 18)] .. b64chars[band(rshift(v, 12), 63)] .. "=="
  elseif r == 2 then
    local a, b = s:byte(n - 1, n)
    local v = bor(lshift(a, 16), lshift(b, 8))
    out[#out + 1] = b64chars[rshift(v, 18)] .. b64chars[band(rshift(v, 12), 63)] .. b64chars[band(rshift(v, 6), 63)] .. "="
  end
  return table.concat(out)
end

-- "data:image/png;base64,..." for an <img src=...>
function M.data_uri(bytes, mime)
  return "data:" .. (mime or "image/png") .. ";base64," .. M.base64(bytes)
end

return M
