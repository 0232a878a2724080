-- test_notebook_page.lua: wb.notebook.page builds a self-contained HTML page
-- (a recipe's run report): Markdown, escaped tables, inline PNG figures whose
-- base64 decodes back to the same bytes; bad input fails with a message.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local png = wb.plot.ecg(wb.sim.ecg { fs = 250, seconds = 2, seed = 1 }, { fs = 250 })
local p = wb.notebook.page("run <1>")
p:md("## Results\nHR MAE **3.2** bpm")
p:table({ { "a<b", 1.5 }, { "c", 2 } }, { header = { "k", "v" }, caption = "metrics" })
p:figure(png, { caption = "real vs generated" })
p:text("x < y & z")
local file = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_test_page.html"
p:save(file)
local f = assert(io.open(file, "rb"))
local html = f:read("*a")
f:close()
os.remove(file)

T.ok(html:find("<title>run &lt;1&gt;</title>", 1, true), "title escaped")
T.ok(html:find("<h2>Results</h2>", 1, true) and html:find("<strong>3.2</strong>", 1, true), "markdown rendered")
T.ok(html:find("<td>a&lt;b</td>", 1, true) and html:find('<td class="num">1.5</td>', 1, true), "table cells escaped, numbers right-aligned")
T.ok(html:find("<caption>metrics</caption>", 1, true) and html:find("<figcaption>real vs generated</figcaption>", 1, true), "captions")
T.ok(html:find("x &lt; y &amp; z", 1, true), "text escaped")
local b64 = html:match('src="data:image/png;base64,([^"]+)"')
T.ok(b64 ~= nil, "figure inlined as a data URI")
-- decode the base64 independently of wb.plot.base64
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local val, out, bits, nb = {}, {}, 0, 0
for i = 1, 64 do val[alphabet:sub(i, i)] = i - 1 end
for ch in (b64 or ""):gmatch("[^=]") do
  bits, nb = bits * 64 + val[ch], nb + 6
  if nb >= 8 then
    nb = nb - 8
    local byte = math.floor(bits / 2 ^ nb)
    out[#out + 1] = string.char(byte)
    bits = bits - byte * 2 ^ nb
  end
end
T.ok(table.concat(out) == png, "the inlined figure decodes to the PNG's bytes")

T.fails(function() p:figure(42) end, "page:figure: expected PNG bytes")
T.fails(function() p:figure("not a figure at all") end, "page:figure: not PNG bytes")
T.fails(function() p:table({ 1 }) end, "page:table: row 1 is not a list")
T.fails(function() p:save("/nonexistent-dir/x.html") end, "page:save: cannot write")
T.done()
