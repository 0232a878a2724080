-- test_plot.lua: wb.plot from Lua: files and bytes (PNG size from the paper
-- size and dpi, SVG in mm), options, series forms, raw pixels, base64 and
-- data URIs, and errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local bit = require "bit"
local plot = wb.plot

local dir = (os.getenv("BUILD") or "build") .. "/tests/"
os.execute("mkdir -p " .. dir)

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local function be32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function png_size(s)
  if s:sub(1, 8) ~= "\137PNG\r\n\26\n" or s:sub(13, 16) ~= "IHDR" then return nil end
  return be32(s, 17), be32(s, 21)
end

local ecg, rpeaks = wb.sim.ecg { fs = 500, seconds = 10, hr = 60, seed = 4 }

-- the 12-lead figure: to a file, and the same bytes in memory
local file, w, h = plot.ecg(ecg, { fs = 500, file = dir .. "plot_lua_ecg12.png", title = "60 bpm", dpi = 150 })
T.ok(file == dir .. "plot_lua_ecg12.png", "returns the file name")
local pw, ph = png_size(read(file))
T.ok(pw == math.floor(280 / 25.4 * 150 + 0.5) and ph == math.floor(185 / 25.4 * 150 + 0.5) and pw == w and ph == h,
  string.format("PNG %s x %s, reported %s x %s", tostring(pw), tostring(ph), w, h))
local bytes = plot.ecg(ecg, { fs = 500, title = "60 bpm", dpi = 150 })
T.ok(bytes == read(file), "PNG bytes in memory equal the file")

-- SVG: sized in mm; no rhythm strip makes it 40 mm shorter
local svg, sw, sh = plot.ecg(ecg, { fs = 500, format = "svg", rhythm = false })
T.ok(sw == 280 and sh == 145 and svg:find('width="280mm" height="145mm"', 1, true) and svg:sub(-7, -2) == "</svg>",
  "SVG 280 x 145 mm")
plot.ecg(ecg, { fs = 500, file = dir .. "plot_lua_ecg12.svg", leads = wb.sim.leads, rhythm = "V1" })
T.ok(read(dir .. "plot_lua_ecg12.svg"):find("<svg", 1, true), "SVG file written")

-- strips of one lead with R peaks from a Lua table, markers as 0-based positions
local peaks = rpeaks:totable()
local _, sw1 = plot.strips(ecg[2], { fs = 500, markers = peaks, seconds = 4, file = dir .. "plot_lua_lead2.png" })
T.ok(sw1 == math.floor((20 + 5 * math.ceil((10 + 100) / 5)) / 25.4 * 100 + 0.5), "4 s strip width " .. sw1)
plot.strips(ecg, { fs = 500, markers = rpeaks, marker_lead = "II", marker_labels = (function()
  local l = {}
  for i = 1, rpeaks:numel() do l[i] = "R" end
  return l
end)(), seconds = 3, file = dir .. "plot_lua_strips.png" })

-- raw pixels: the marks are blue dots on the trace
local px, aw, ah = plot.strips(ecg[2]:reshape(1, 5000), { fs = 500, markers = { peaks[1] }, format = "argb32", dpi = 254 })
T.ok(#px == aw * ah * 4, "argb32 holds width x height pixels")
do
  local t = peaks[1] / 500
  local x = math.floor(10 * (20 + 25 * t) + 0.5)
  local v = ecg[2][peaks[1] + 1]
  local y = math.floor(300.5 - 100 * v) -- baseline 30 mm, 10 mm/mV, 10 px/mm
  local i = (y * aw + x) * 4 + 1
  local b, g, r = px:byte(i, i + 2) -- little-endian 0xAARRGGBB
  T.ok(b > 150 and r < 60, string.format("the R-peak mark is blue at (%d, %d): %d %d %d", x, y, r, g, b))
end

-- a pair: side by side is wider than the overlay
local _, pw2 = plot.pair(ecg, ecg * 0.5, { fs = 500, names = { "real", "generated" }, file = dir .. "plot_lua_pair.png" })
local _, ow2 = plot.pair(ecg, ecg * 0.5, { fs = 500, names = { "real", "generated" }, overlay = true,
  file = dir .. "plot_lua_overlay.png" })
T.ok(pw2 == math.floor(550 / 25.4 * 100 + 0.5) and ow2 == math.floor(280 / 25.4 * 100 + 0.5), "pair " .. pw2 .. ", overlay " .. ow2)

-- charts: a map of named series (tables or tensors), a list, one series, scatter
local train, val = {}, {}
for i = 1, 200 do train[i] = 2 * math.exp(-i / 50) + 0.05 end
for i = 1, 20 do val[i] = 2 * math.exp(-i * 10 / 50) + 0.1 end
local vsteps = {}
for i = 1, 20 do vsteps[i] = i * 10 end
local _, lw, lh = plot.lines({ train = train, val = { x = vsteps, y = val } },
  { logy = true, title = "loss", xlabel = "step", ylabel = "loss", file = dir .. "plot_lua_loss.png" })
T.ok(lw == math.floor(160 / 25.4 * 100 + 0.5) and lh == math.floor(100 / 25.4 * 100 + 0.5), "chart 160 x 100 mm")
local s1 = plot.lines({ { y = wb.tensor(train), name = "train" } }, { format = "svg", width = 80, height = 50 })
T.ok(s1:find('width="80mm" height="50mm"', 1, true), "chart size in mm")
T.ok(#plot.lines(train) > 1000, "one series as a table of numbers")
T.ok(#plot.lines(wb.tensor(train)) > 1000, "one series as a tensor")
local xs, ys = {}, {}
for i = 1, 50 do xs[i] = i; ys[i] = i + math.sin(i) end
plot.scatter(xs, ys, { xlabel = "true", ylabel = "measured", file = dir .. "plot_lua_scatter.png" })
T.ok(png_size(read(dir .. "plot_lua_scatter.png")), "scatter PNG")
T.ok(png_size(plot.scatter({ { x = xs, y = ys, name = "a" } })), "scatter of a series list")

-- base64 (RFC 4648 test vectors) and data URIs
local vec = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
for k, v in pairs(vec) do T.ok(plot.base64(k) == v, "base64('" .. k .. "') = " .. plot.base64(k)) end
T.ok(plot.base64("\0\255\254") == "AP/+", "base64 of high bytes")
local uri = plot.data_uri(bytes)
T.ok(uri:sub(1, 22) == "data:image/png;base64," and #uri == 22 + 4 * math.ceil(#bytes / 3), "PNG data URI")
-- decode back and compare
do
  local B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local val = {}
  for i = 1, 64 do val[B:byte(i)] = i - 1 end
  local enc, out = uri:sub(23), {}
  for i = 1, #enc, 4 do
    local a, b, c, d = enc:byte(i, i + 3)
    local n = bit.bor(bit.lshift(val[a], 18), bit.lshift(val[b], 12), bit.lshift(val[c] or 0, 6), val[d] or 0)
    out[#out + 1] = string.char(bit.rshift(n, 16), bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
    if c == 61 then out[#out] = out[#out]:sub(1, 1) elseif d == 61 then out[#out] = out[#out]:sub(1, 2) end
  end
  T.ok(table.concat(out) == bytes, "base64 decodes back to the PNG")
end

-- errors
T.fails(function() plot.ecg(ecg, { hz = 500 }) end, "plot.ecg: unknown option 'hz'")
T.fails(function() plot.ecg(ecg) end, "plot.ecg: an options table with fs is required")
T.fails(function() plot.ecg(ecg, {}) end, "plot_ecg12: fs must be > 0 Hz, got 0")
T.fails(function() plot.ecg(ecg:narrow(1, 1, 6), { fs = 500 }) end, "expected a 12-lead f32 signal (12, n) in mV, got f32[6,5000]")
T.fails(function() plot.ecg(ecg, { fs = 500, file = "/nonexistent-dir/a.png" }) end, "cannot write '/nonexistent-dir/a.png'")
T.fails(function() plot.ecg(ecg, { fs = 500, file = dir .. "a.pdf" }) end, "use a .png or .svg file name")
T.fails(function() plot.strips(ecg, { fs = 500, marker_lead = "V9", markers = { 1 } }) end, "marker lead 'V9'")
T.fails(function() plot.ecg(ecg, { fs = 500, leads = { 1, 2 } }) end, "plot.ecg: leads must name all 12 leads")
local names = {}
for i = 1, 12 do names[i] = i end
T.fails(function() plot.ecg(ecg, { fs = 500, leads = names }) end, "leads must be strings")
T.fails(function() plot.strips(ecg, { fs = 500, markers = { 1, 2 }, marker_labels = { "R" } }) end,
  "marker_labels needs one label per marker (2)")
T.fails(function() plot.lines({}) end, "plot.lines: no series to plot")
T.fails(function() plot.lines({ { x = { 1, 2 }, y = { 1, 2, 3 } } }) end, "differ in length")
T.fails(function() plot.lines(train, { log = true }) end, "plot.lines: unknown option 'log'")
T.fails(function() plot.base64(5) end, "expected a string of bytes")
T.done()
