--[===[ ecgwb.notebook: literate Lua notebooks run to one self-contained HTML page.

  ecgwb notebook run FILE.lua [--out FILE.html] [--echo]

The format. A notebook is a plain Lua file (so `ecgwb FILE.lua` also runs it):
  --%% optional title       starts a new code cell
  --[[md                    a Markdown cell, up to the closing ]] (the block
  # Heading                 comment may use a level, --[==[md ... ]==], when
  text                      the text holds "]]"); the opening and closing
  ]]                        lines belong to the cell
Code before the first marker is the first code cell. Blank code cells are
dropped.

Running. The whole file is compiled as ONE chunk, so a `local` of one cell
is seen by the later cells, and line numbers in errors are the file's. Each
code cell starts with a call that tells the runner which cell is running;
print and io.write are captured into the running cell's output (writes to
io.stdout / io.stderr handles are not). The chunk runs in its own global
table (globals fall through to _G). The run stops at the first error: that
cell shows the error and its traceback, later cells are marked "not run",
the HTML is still written, and `main` returns 1. A syntax error anywhere
marks the cell that holds its line. A cell boundary must be between
top-level statements (not inside a function or a table), and LuaJIT allows
at most 200 top-level locals in one notebook.

Output from code. In a notebook `nb` is this module (also `wb.notebook`):
  nb.show(fig [, opts])   a figure: PNG bytes (what wb.plot.* return without
                          `file`), SVG text, or the name of a .png/.svg file;
                          opts: caption, width (CSS pixels). Extra numbers
                          after fig (wb.plot's width, height) are ignored, so
                          nb.show(wb.plot.ecg(x, { fs = 500 })) works.
  nb.table(rows [, opts]) an HTML table; rows: a list of lists; opts: header
                          (a list), caption, digits (significant digits, 4)
  nb.md(text)             Markdown rendered into the output
  nb.html(s)              raw HTML (trusted) into the output
Outside a notebook run these print a short placeholder line instead.

Markdown subset (M.markdown): ATX headings (# .. ######); paragraphs
(consecutive lines, ended by a blank line); fenced code (``` with an
optional language, kept verbatim); unordered lists (-, * or + items) and
ordered lists (1. or 1)), one level, an indented line continues the item;
block quotes (> lines); horizontal rules (---); inline: `code`, **strong**,
*emphasis* and _emphasis_ (underscores only at word boundaries, so
snake_case stays), [links](url) (http, https, mailto, relative and #
targets; others are shown as text), and a backslash escapes the next
punctuation character. Everything else is text, HTML-escaped (raw HTML in
Markdown is not passed through).
]===]
local M = {}

local PNG_SIG = "\137PNG\r\n\26\n"

---------------------------------------------------------------- html helpers

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
M.escape = esc

---------------------------------------------------------------- markdown

local function safe_url(u)
  local scheme = u:match("^(%a[%w+.-]*):")
  if scheme then
    scheme = scheme:lower()
    return scheme == "http" or scheme == "https" or scheme == "mailto"
  end
  return true -- relative, or #fragment
end

-- inline markup of one paragraph's text
local function inline(s)
  local held = {}
  local function hold(html)
    held[#held + 1] = html
    return "\1" .. #held .. "\2"
  end
  -- backslash escapes, then code spans, then links: their text is final
  s = s:gsub("\\([%p])", function(c) return hold(esc(c)) end)
  s = s:gsub("(`+)(.-)%1", function(_, code)
    return hold("<code>" .. esc(code:match("^%s*(.-)%s*$")) .. "</code>")
  end)
  s = s:gsub("%[([^%]\n]*)%]%(([^%)%s]*)%)", function(text, url)
    if not safe_url(url) then return nil end
    return hold('<a href="' .. esc(url) .. '">') .. text .. hold("</a>")
  end)
  s = esc(s)
  s = s:gsub("%*%*(%S.-%S?)%*%*", "<strong>%1</strong>")
  s = s:gsub("%*(%S[^%*\n]-)%*", function(t)
    if t:sub(-1):match("%s") then return nil end
    return "<em>" .. t .. "</em>"
  end)
  s = s:gsub("%f[%w_]_([^_\n]-[^_%s])_%f[^%w_]", "<em>%1</em>")
  s = s:gsub("\1(%d+)\2", function(i) return held[tonumber(i)] end)
  return s
end
M.inline = inline

local function list_item(line)
  local ind, text = line:match("^(%s*)[-*+]%s+(.*)$")
  if ind and #ind < 4 then return "ul", text end
  local n
  ind, n, text = line:match("^(%s*)(%d+)[.)]%s+(.*)$")
  if ind and #ind < 4 then return "ol", text, tonumber(n) end
end

local function is_rule(line)
  local c = line:match("^%s*([-*_])")
  if not c then return false end
  local rest = line:gsub("%s", "")
  return #rest >= 3 and rest == string.rep(c, #rest)
end

function M.markdown(text)
  local lines = {}
  for l in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end
  local out, i, n = {}, 1, #lines
  while i <= n do
    local line = lines[i]
    local fence = line:match("^%s*```%s*([%w_+-]*)%s*$")
    if fence then
      local body = {}
      i = i + 1
      while i <= n and not lines[i]:match("^%s*```%s*$") do
        body[#body + 1] = lines[i]
        i = i + 1
      end
      i = i + 1
      local cls = fence ~= "" and (' class="language-' .. esc(fence) .. '"') or ""
      out[#out + 1] = "<pre><code" .. cls .. ">" .. esc(table.concat(body, "\n")) .. "</code></pre>"
    elseif line:match("^%s*$") then
      i = i + 1
    elseif line:match("^#+%s") or line:match("^#+$") then
      local hashes, title = line:match("^(#+)%s*(.-)%s*#*%s*$")
      local level = math.min(#hashes, 6)
      out[#out + 1] = string.format("<h%d>%s</h%d>", level, inline(title), level)
      i = i + 1
    elseif is_rule(line) then
      out[#out + 1] = "<hr>"
      i = i + 1
    elseif line:match("^%s*>") then
      local body = {}
      while i <= n and lines[i]:match("^%s*>") do
        body[#body + 1] = lines[i]:gsub("^%s*> ?", "")
        i = i + 1
      end
      out[#out + 1] = "<blockquote>\n" .. M.markdown(table.concat(body, "\n")) .. "\n</blockquote>"
    elseif list_item(line) then
      local kind, _, start = list_item(line)
      local items = {}
      while i <= n do
        local k, text = list_item(lines[i])
        if k == kind then
          items[#items + 1] = text
        elseif k == nil and not lines[i]:match("^%s*$") and lines[i]:match("^%s") then
          items[#items] = items[#items] .. "\n" .. lines[i]:match("^%s*(.-)$")
        else
          break
        end
        i = i + 1
      end
      local open = kind == "ol" and start ~= 1 and ('<ol start="' .. start .. '">') or ("<" .. kind .. ">")
      local parts = { open }
      for _, t in ipairs(items) do parts[#parts + 1] = "<li>" .. inline(t) .. "</li>" end
      parts[#parts + 1] = "</" .. kind .. ">"
      out[#out + 1] = table.concat(parts, "\n")
    else
      local para = {}
      while i <= n do
        local l = lines[i]
        if l:match("^%s*$") or l:match("^%s*```") or l:match("^#+%s") or l:match("^%s*>") or list_item(l) or
            is_rule(l) then
          break
        end
        para[#para + 1] = l:match("^%s*(.-)%s*$")
        i = i + 1
      end
      out[#out + 1] = "<p>" .. inline(table.concat(para, "\n")) .. "</p>"
    end
  end
  return table.concat(out, "\n")
end

---------------------------------------------------------------- parsing

--[[ cells: list of { kind = "code" | "md", text, first, last (1-based file
lines, inclusive), title (code cells: the --%% line's text) } ]]
function M.parse(text, name)
  name = name or "notebook"
  local lines = {}
  for l in (text:gsub("\r\n", "\n") .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    lines[#lines + 1] = l
  end
  local cells, cur = {}, nil
  local function flush()
    if cur and cur.kind == "code" then
      local a, b = cur.body_first, cur.last
      while a <= b and lines[a]:match("^%s*$") do a = a + 1 end
      while b >= a and lines[b]:match("^%s*$") do b = b - 1 end
      if a <= b then
        cur.text = table.concat(lines, "\n", a, b)
        cur.code_first = a
        cells[#cells + 1] = cur
      end
    end
    cur = nil
  end
  local i = 1
  if lines[1] and lines[1]:match("^#!") then i = 2 end -- a shebang line is no cell
  while i <= #lines do
    local l = lines[i]
    local level = l:match("^%s*%-%-%[(=*)%[md%s*$")
    if level then
      flush()
      local close = "]" .. level .. "]"
      local body, j = {}, i + 1
      while j <= #lines do
        local s, e = lines[j]:find(close, 1, true)
        if s then
          if lines[j]:sub(e + 1):match("%S") then
            error(string.format("%s:%d: text after %s closing a Markdown cell", name, j, close), 0)
          end
          local before = lines[j]:sub(1, s - 1)
          if before:match("%S") then body[#body + 1] = before end
          break
        end
        body[#body + 1] = lines[j]
        j = j + 1
      end
      if j > #lines then error(string.format("%s:%d: Markdown cell not closed with %s", name, i, close), 0) end
      cells[#cells + 1] = { kind = "md", text = table.concat(body, "\n"), first = i, last = j }
      i = j + 1
    elseif l:match("^%-%-%%%%") then
      flush()
      local title = l:match("^%-%-%%%%%s*(.-)%s*$")
      cur = { kind = "code", first = i, body_first = i + 1, last = i, title = title ~= "" and title or nil }
      i = i + 1
    else
      if not cur then cur = { kind = "code", first = i, body_first = i, last = i } end
      cur.last = i
      i = i + 1
    end
  end
  flush()
  local k = 0
  for _, c in ipairs(cells) do
    if c.kind == "code" then
      k = k + 1
      c.index = k
    end
  end
  return cells, lines
end

-- the whole file as one chunk: each code cell's first line starts with
-- __nb_cell(k); every other line is kept, so line numbers stay the file's
local function chunk_source(cells, lines)
  local src = {}
  for i = 1, #lines do src[i] = lines[i] end
  if src[1] and src[1]:match("^#!") then src[1] = "" end
  for _, c in ipairs(cells) do
    if c.kind == "code" then src[c.code_first] = "__nb_cell(" .. c.index .. "); " .. src[c.code_first] end
  end
  return table.concat(src, "\n")
end

---------------------------------------------------------------- output from cells

local current -- the running cell (its outputs list), or nil outside a run

local function emit(item)
  local outs = current.outputs
  if item.kind == "text" and outs[#outs] and outs[#outs].kind == "text" then
    outs[#outs].text = outs[#outs].text .. item.text
  else
    outs[#outs + 1] = item
  end
end

local function png_size(b)
  if #b < 24 or b:sub(1, 8) ~= PNG_SIG then return nil end
  local function u32(p)
    local a, b2, c, d = b:byte(p, p + 3)
    return ((a * 256 + b2) * 256 + c) * 256 + d
  end
  return u32(17), u32(21)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- the output item of a figure: PNG bytes, SVG text or a .png/.svg file name
local function figure_item(fig, o, op)
  if type(fig) ~= "string" then error(op .. ": expected PNG bytes, SVG text or a file name, got " .. type(fig), 3) end
  local data = fig
  if fig:sub(1, 8) ~= PNG_SIG and not fig:match("^%s*<") and #fig < 4096 and (fig:match("%.png$") or fig:match("%.svg$")) then
    data = read_file(fig)
    if not data then error(op .. ": cannot read '" .. fig .. "'", 3) end
  end
  local mime
  if data:sub(1, 8) == PNG_SIG then
    mime = "image/png"
  elseif data:match("^%s*<%?xml") or data:match("^%s*<svg") then
    mime = "image/svg+xml"
  else
    error(op .. ": not PNG bytes, SVG text or a .png/.svg file name (" .. #fig .. " bytes)", 3)
  end
  return { kind = "figure", mime = mime, data = data, width = o.width or png_size(data), caption = o.caption }
end

function M.show(fig, ...)
  local o = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" then o = v end
  end
  local item = figure_item(fig, o, "nb.show")
  if not current then
    print(string.format("[figure: %s, %d bytes]", item.mime, #item.data))
    return
  end
  emit(item)
end

local function fmt_value(v, digits)
  if type(v) == "number" then
    if v ~= v then return "NaN" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%." .. digits .. "g", v)
  end
  if v == nil then return "" end
  return tostring(v)
end

local function table_html(rows, o, op)
  if type(rows) ~= "table" then error(op .. ": rows must be a list of lists, got " .. type(rows), 3) end
  local digits = o.digits or 4
  local h = { "<table>" }
  if o.caption then h[#h + 1] = "<caption>" .. esc(o.caption) .. "</caption>" end
  if o.header then
    local th = {}
    for _, v in ipairs(o.header) do th[#th + 1] = "<th>" .. esc(fmt_value(v, digits)) .. "</th>" end
    h[#h + 1] = "<thead><tr>" .. table.concat(th) .. "</tr></thead>"
  end
  h[#h + 1] = "<tbody>"
  for r, row in ipairs(rows) do
    if type(row) ~= "table" then error(op .. ": row " .. r .. " is not a list", 3) end
    local td = {}
    local ncol = o.header and #o.header or #row
    for c = 1, math.max(ncol, #row) do
      local v = row[c]
      td[#td + 1] = (type(v) == "number" and '<td class="num">' or "<td>") .. esc(fmt_value(v, digits)) .. "</td>"
    end
    h[#h + 1] = "<tr>" .. table.concat(td) .. "</tr>"
  end
  h[#h + 1] = "</tbody></table>"
  return table.concat(h, "\n")
end

function M.table(rows, o)
  o = o or {}
  local html = table_html(rows, o, "nb.table")
  if not current then
    for _, row in ipairs(rows) do
      local t = {}
      for c, v in ipairs(row) do t[c] = fmt_value(v, o.digits or 4) end
      print(table.concat(t, "\t"))
    end
    return
  end
  emit { kind = "html", html = html }
end

function M.md(text)
  if not current then print(text) return end
  emit { kind = "html", html = '<div class="md">' .. M.markdown(tostring(text)) .. "</div>" }
end

function M.html(s)
  if not current then print(s) return end
  emit { kind = "html", html = tostring(s) }
end

---------------------------------------------------------------- running

local function now()
  local ok, wb = pcall(require, "ecgwb")
  if ok and wb.now then return wb.now() end
  return os.clock()
end

local function fmt_write(...)
  local t = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "number" then t[i] = string.format("%.14g", v)
    elseif type(v) == "string" then t[i] = v
    else error("bad argument #" .. i .. " to 'write' (string expected, got " .. type(v) .. ")", 3) end
  end
  return table.concat(t)
end

--[[ runs the notebook at path; returns a result table:
  { path, title, cells (with .status "ok" | "error" | "not run", .outputs,
    .seconds, .error), ok, error (message of the first error), seconds }
opts: echo (copy captured output to stderr as it comes), progress (a line per
cell on stderr; default true) ]]
function M.run(path, opts)
  opts = opts or {}
  local text = read_file(path)
  if not text then error("notebook: cannot read '" .. path .. "'", 0) end
  local cells, lines = M.parse(text, path)
  local code = {}
  for _, c in ipairs(cells) do
    if c.kind == "code" then
      c.status, c.outputs = "not run", {}
      code[#code + 1] = c
    end
  end
  local res = { path = path, cells = cells, ok = true, started = os.date("%Y-%m-%d %H:%M:%S") }
  for _, c in ipairs(cells) do
    if c.kind == "md" then
      res.title = c.text:match("^%s*#%s+([^\n]-)%s*#*%s*\n") or c.text:match("^%s*#%s+([^\n]-)%s*#*%s*$")
      break
    end
  end
  res.title = res.title or path:match("([^/]+)$")

  local function cell_of_line(line)
    local found
    for _, c in ipairs(code) do
      if c.first <= line then found = c end
    end
    return found or code[1]
  end

  local progress = opts.progress ~= false
  local t_start = now()
  local chunk, err = loadstring(chunk_source(cells, lines), "@" .. path)
  if not chunk then
    res.ok = false
    res.error = err
    local line = tonumber(err:match(":(%d+):"))
    local c = line and cell_of_line(line)
    if c then
      c.status, c.error = "error", "syntax error: " .. err
    end
    res.seconds = now() - t_start
    return res
  end

  local env = setmetatable({}, { __index = _G })
  env.nb = M
  env.arg = { [0] = path }
  local active, t_cell
  local function finish_cell()
    if active then
      active.seconds = now() - t_cell
      if active.status == "running" then active.status = "ok" end
      if progress then
        io.stderr:write(string.format("notebook: cell %d/%d %s (%.2f s)\n", active.index, #code, active.status, active.seconds))
      end
    end
  end
  env.__nb_cell = function(k)
    finish_cell()
    active = code[k]
    active.status = "running"
    current = active
    t_cell = now()
  end
  setfenv(chunk, env)

  local saved_print, saved_write = print, io.write
  _G.print = function(...)
    local n, t = select("#", ...), {}
    for i = 1, n do t[i] = tostring((select(i, ...))) end
    local s = table.concat(t, "\t") .. "\n"
    if current then emit { kind = "text", text = s } else saved_write(s) end
    if opts.echo then io.stderr:write(s) end
  end
  io.write = function(...)
    local s = fmt_write(...)
    if current then emit { kind = "text", text = s } else saved_write(s) end
    if opts.echo then io.stderr:write(s) end
    return io.stdout
  end
  local ok, msg = xpcall(chunk, function(e)
    local m = type(e) == "string" and e or tostring(e)
    -- the frames below the notebook's main chunk are the runner's
    local tb = debug.traceback(m, 2)
    local cut = tb:find("in main chunk", 1, true)
    if cut then tb = tb:sub(1, (tb:find("\n", cut, true) or #tb + 1) - 1) end
    return tb
  end)
  _G.print, io.write = saved_print, saved_write
  if ok then
    finish_cell()
  else
    res.ok = false
    res.error = msg
    if active then
      active.status, active.error = "error", msg
      finish_cell()
    end
  end
  current = nil
  res.seconds = now() - t_start
  return res
end

---------------------------------------------------------------- html page

local CSS = [[
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #1d1d1f; background: #fff; line-height: 1.45; }
header.nb { border-bottom: 1px solid #ccc; margin-bottom: 1.5em; color: #555; font-size: 0.9em; }
header.nb .status-ok { color: #176b1f; font-weight: bold; }
header.nb .status-error { color: #b00020; font-weight: bold; }
.cell { margin: 1em 0; }
.cell.code { border-left: 4px solid #3a6ea5; padding-left: 0.8em; }
.cell.code.error { border-left-color: #b00020; }
.cell.code.notrun { border-left-color: #bbb; opacity: 0.6; }
.cell .label { font-family: "DejaVu Sans Mono", monospace; font-size: 0.8em; color: #666; }
pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.85em; overflow-x: auto; white-space: pre; margin: 0.4em 0; }
pre.src { background: #f4f6f9; padding: 0.6em; border-radius: 4px; }
pre.out { background: #fff; padding: 0.3em 0.6em; border: 1px dashed #ddd; white-space: pre-wrap; }
div.error { background: #fdecee; border: 1px solid #b00020; padding: 0.5em 0.8em; border-radius: 4px; margin: 0.4em 0; }
div.error strong { color: #b00020; }
figure { margin: 0.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 0.2em; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.9em; background: #f4f6f9; padding: 0 0.2em; }
pre code { background: none; padding: 0; }
.md pre { background: #f4f6f9; padding: 0.6em; border-radius: 4px; }
blockquote { border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; color: #444; }
]]

local function output_html(o)
  if o.kind == "text" then
    return '<pre class="out">' .. esc(o.text) .. "</pre>"
  elseif o.kind == "figure" then
    local b64 = require("ecgwb.plot").base64(o.data)
    local w = o.width and (' width="' .. math.floor(o.width) .. '"') or ""
    return "<figure><img" .. w .. ' alt="figure" src="data:' .. o.mime .. ";base64," .. b64 .. '">' ..
        (o.caption and ("<figcaption>" .. esc(o.caption) .. "</figcaption>") or "") .. "</figure>"
  else
    return o.html
  end
end

function M.html_page(res)
  local h = {
    "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
    "<title>" .. esc(res.title) .. "</title>", "<style>", CSS, "</style>", "</head>", "<body>",
    '<header class="nb">' .. esc(res.path) .. " &middot; run " .. esc(res.started) ..
    string.format(" &middot; %.1f s &middot; ", res.seconds or 0) ..
    (res.ok and '<span class="status-ok">all cells ran</span>' or '<span class="status-error">stopped at an error</span>') ..
    "</header>", "<main>",
  }
  for _, c in ipairs(res.cells) do
    if c.kind == "md" then
      h[#h + 1] = '<section class="cell md">\n' .. M.markdown(c.text) .. "\n</section>"
    else
      local cls = c.status == "error" and " error" or (c.status == "not run" and " notrun" or "")
      local label = string.format("[%d] line %d", c.index, c.code_first)
      if c.title then label = label .. " &middot; " .. esc(c.title) end
      if c.status == "not run" then label = label .. " &middot; not run"
      elseif c.seconds then label = label .. string.format(" &middot; %.2f s", c.seconds) end
      h[#h + 1] = '<section class="cell code' .. cls .. '" id="cell-' .. c.index .. '">'
      h[#h + 1] = '<div class="label">' .. label .. "</div>"
      h[#h + 1] = '<pre class="src"><code>' .. esc(c.text) .. "</code></pre>"
      for _, o in ipairs(c.outputs or {}) do h[#h + 1] = output_html(o) end
      if c.status == "error" then
        h[#h + 1] = '<div class="error"><strong>Error in cell ' .. c.index .. '</strong><pre class="traceback">' ..
            esc(c.error) .. "</pre></div>"
      end
      h[#h + 1] = "</section>"
    end
  end
  h[#h + 1] = "</main>"
  h[#h + 1] = "</body>"
  h[#h + 1] = "</html>"
  return table.concat(h, "\n") .. "\n"
end

---------------------------------------------------------------- pages from code

--[[ A standalone page built by a recipe (its run report), in the notebooks' style:
  local p = wb.notebook.page("two-stage run")
  p:md("## Results"); p:table(rows, { header = {...} }); p:figure(png, { caption = "..." })
  p:save("runs/two_stage/report.html")      -- one self-contained HTML file ]]
local Page = {}
Page.__index = Page

function M.page(title)
  return setmetatable({ title = tostring(title or "ecgwb"), parts = {} }, Page)
end
function Page:md(text) self.parts[#self.parts + 1] = '<div class="md">' .. M.markdown(tostring(text)) .. "</div>" end
function Page:html(s) self.parts[#self.parts + 1] = tostring(s) end
function Page:table(rows, o) self.parts[#self.parts + 1] = table_html(rows, o or {}, "page:table") end
function Page:figure(fig, o) self.parts[#self.parts + 1] = output_html(figure_item(fig, o or {}, "page:figure")) end
function Page:text(s) self.parts[#self.parts + 1] = '<pre class="out">' .. esc(tostring(s)) .. "</pre>" end
function Page:render()
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
    "<title>" .. esc(self.title) .. "</title>", "<style>", CSS, "</style>", "</head>", "<body>", "<main>",
    '<section class="cell md">', "<h1>" .. esc(self.title) .. "</h1>", table.concat(self.parts, "\n"), "</section>",
    "</main>", "</body>", "</html>" }, "\n") .. "\n"
end
function Page:save(file)
  local f, err = io.open(file, "wb")
  if not f then error("page:save: cannot write '" .. tostring(file) .. "': " .. tostring(err), 2) end
  f:write(self:render())
  f:close()
  return file
end

---------------------------------------------------------------- command line

local USAGE = [[
usage: ecgwb notebook run FILE.lua [--out FILE.html] [--echo] [--quiet]
  runs the notebook's cells in order and writes one self-contained HTML page
  (default: FILE.html beside FILE.lua). Exit status 1 if a cell fails (the
  page still shows the error), 2 for bad arguments.
  --echo   also copy the cells' printed output to stderr as it comes
  --quiet  no per-cell progress lines on stderr
]]

-- arg: { "run", FILE, options... }; returns the exit status
function M.main(arg)
  arg = arg or {}
  if arg[1] == "--help" or arg[1] == "-h" or arg[1] == "help" then
    io.stdout:write(USAGE)
    return 0
  end
  if arg[1] ~= "run" then
    io.stderr:write(USAGE)
    return 2
  end
  local file, out, opts = nil, nil, {}
  local i = 2
  while arg[i] do
    local a = arg[i]
    if a == "--out" or a == "-o" then
      out = arg[i + 1]
      if not out then io.stderr:write("notebook: --out needs a file name\n") return 2 end
      i = i + 1
    elseif a:match("^%-%-out=") then
      out = a:sub(7)
    elseif a == "--echo" then
      opts.echo = true
    elseif a == "--quiet" then
      opts.progress = false
    elseif a:sub(1, 1) == "-" then
      io.stderr:write("notebook: unknown option '" .. a .. "'\n" .. USAGE)
      return 2
    elseif file then
      io.stderr:write("notebook: one notebook at a time ('" .. file .. "', '" .. a .. "')\n")
      return 2
    else
      file = a
    end
    i = i + 1
  end
  if not file then io.stderr:write(USAGE) return 2 end
  out = out or (file:gsub("%.lua$", "") .. ".html")
  local ok, res = pcall(M.run, file, opts)
  if not ok then
    io.stderr:write(tostring(res) .. "\n")
    return 1
  end
  local f, ferr = io.open(out, "wb")
  if not f then
    io.stderr:write("notebook: cannot write '" .. out .. "': " .. tostring(ferr) .. "\n")
    return 1
  end
  f:write(M.html_page(res))
  f:close()
  if res.ok then
    io.stderr:write(string.format("notebook: %s -> %s (%.1f s)\n", file, out, res.seconds))
    return 0
  end
  io.stderr:write(string.format("notebook: %s stopped at an error; the page %s shows it\n%s\n", file, out, res.error))
  return 1
end

return M
