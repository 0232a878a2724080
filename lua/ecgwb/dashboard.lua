--[[ ecgwb.dashboard: a live, read-only web page of the running jobs, served
from the event loop (core/dashboard.c).

  local d = wb.dashboard(8080)           -- or: ecgwb --serve 8080 FILE.lua
  print(d.url)                           --> http://127.0.0.1:8080/
  wb.dashboard.publish_ecg(x, { fs = 500, title = "sample" })  -- in a job: its latest ECG figure
  wb.dashboard.stop()

Routes (GET only; anything else is 404, other methods 405):
  /                 the page: a table of the jobs (status, step, latest loss)
                    with their loss curves and ECG figures; it reloads every 2 s
  /jobs.json        every job: id, name, kind, status, metrics (the latest
                    values given to wb.report), reports (how many), ecg (bool)
  /loss/<id>.png    the job's loss curves (wb.plot.lines): every numeric
                    metric whose name contains "loss", against step
  /ecg/<id>.png     the last ECG the job published (wb.plot.ecg for 12 leads,
                    wb.plot.strips otherwise)

The jobs are the tasks that called wb.report or were started by wb.run
(wb.loop.reported), and the REPL's own reports as job 0 "foreground".

How it works. The C side owns the socket and never calls Lua: each good GET
becomes an event with a request number; the dashboard's task (a wb.spawn
task waiting on the server's events, which does not keep a script alive)
renders the answer and hands C the bytes. So the page shows the moment it is
asked for and nothing is rendered while nobody looks; a request is answered
at the running job's next yield (wb.report yields). Figures are cached until
the job reports or publishes again. No file is ever read: targets only name
jobs by number, so there is no path to traverse.

It binds 127.0.0.1 unless told otherwise: wb.dashboard(port, { host = "0.0.0.0" })
opens it to the network (there is no authentication). The server lives as
long as its task: a script's run (`ecgwb --serve PORT FILE.lua` stops it when
the script ends; add -i to keep it in the REPL), or the REPL session.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal
local loop = require "ecgwb.loop"
local json = require "ecgwb.json"

local M = {}
local server -- { id, host, port, url, task }

local TEXT, HTML, JSON, PNG = "text/plain; charset=utf-8", "text/html; charset=utf-8",
  "application/json", "image/png"

------------------------------------------------------------------ jobs
local function jobs()
  local list = {}
  for _, t in ipairs(loop.reported) do
    if t ~= loop.foreground or #t.history > 0 then list[#list + 1] = t end
  end
  return list
end

local function find_job(id)
  for _, t in ipairs(jobs()) do if t.id == id then return t end end
  return nil
end

local function status(t)
  if t == loop.foreground then return "foreground" end
  return t:status()
end

-- JSON has no NaN or infinity: those become strings
local function json_value(v)
  if type(v) == "number" then
    if v ~= v then return "NaN" end
    if v == math.huge then return "Infinity" end
    if v == -math.huge then return "-Infinity" end
    return v
  end
  if type(v) == "string" or type(v) == "boolean" then return v end
  return nil -- tensors, tables, ... are left out
end

local function job_info(t)
  local m = {}
  for k, v in pairs(t._metrics) do
    if type(k) == "string" then m[k] = json_value(v) end
  end
  return { id = t.id, name = tostring(t.name), kind = t.kind or (t == loop.foreground and "foreground" or "task"),
    status = status(t), metrics = m, reports = #t.history, ecg = t.dashboard_ecg ~= nil }
end

function M.jobs_json()
  local list = {}
  for i, t in ipairs(jobs()) do list[i] = job_info(t) end
  if #list == 0 then return '{"jobs":[],"time":' .. json.encode(wb.now()) .. '}' end
  return json.encode({ jobs = list, time = wb.now() }, { strict = true })
end

------------------------------------------------------------------ figures
local function loss_keys(t)
  local keys = {}
  for k, v in pairs(t._metrics) do
    if type(k) == "string" and type(v) == "number" and k:find("loss", 1, true) then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- PNG bytes of the job's loss curves, or nil if it reported none
local function loss_png(t)
  local h = #t.history
  local c = t.dashboard_loss
  if c and c.n == h and c.last == t.history[h] then return c.png end
  local keys = loss_keys(t)
  if #keys == 0 then return nil end
  local series = {}
  for _, k in ipairs(keys) do
    local xs, ys = {}, {}
    for i, row in ipairs(t.history) do
      local y = row[k]
      if type(y) == "number" then
        xs[#xs + 1] = type(row.step) == "number" and row.step or i
        ys[#ys + 1] = y
      end
    end
    if #ys > 0 then series[#series + 1] = { x = xs, y = ys, name = k } end
  end
  if #series == 0 then return nil end
  local png = wb.plot.lines(series, { title = string.format("job %d %s", t.id, tostring(t.name)),
    xlabel = "step", ylabel = "loss", width = 150, height = 90 })
  t.dashboard_loss = { n = h, last = t.history[h], png = png }
  return png
end

local function ecg_png(t)
  local e = t.dashboard_ecg
  if not e then return nil end
  if not e.png then
    local o = { fs = e.fs, title = e.title }
    e.png = (e.x:dim() == 2 and e.x:size(1) == 12) and wb.plot.ecg(e.x, o) or wb.plot.strips(e.x, o)
  end
  return e.png
end

-- shows x (12, n) in mV, or (L, n) or (n) as strips, as the calling task's
-- (or the REPL's) latest ECG; o = { fs = Hz (required), title = text }
function M.publish_ecg(x, o)
  if not wb.is_tensor(x) then error("dashboard.publish_ecg: expected a tensor, got " .. type(x), 2) end
  if type(o) ~= "table" or type(o.fs) ~= "number" or not (o.fs > 0) then
    error("dashboard.publish_ecg: an options table with fs > 0 (Hz) is required", 2)
  end
  if x:dim() < 1 or x:dim() > 2 or x:numel() == 0 then
    error("dashboard.publish_ecg: expected (12, n), (L, n) or (n) samples, got " .. x:describe(), 2)
  end
  local task = loop.current() or loop.foreground
  local prev = task.dashboard_ecg
  task.dashboard_ecg = { x = wb.no_grad(function() return x:detach():to("f32"):clone() end), fs = o.fs,
    title = o.title and tostring(o.title), version = (prev and prev.version or 0) + 1 }
  if task == loop.foreground then
    local list = loop.reported
    if not task.listed then task.listed = true; list[#list + 1] = task end
  end
end

------------------------------------------------------------------ the page
local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function num(v)
  if type(v) ~= "number" then return v == nil and "" or esc(v) end
  if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
  return string.format("%.4g", v)
end

function M.page()
  local out = {}
  local function w(...) for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end end
  local list = jobs()
  w([[<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>ecgwb dashboard</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.running { color: #070; } .failed { color: #b00; } .paused, .waiting { color: #a60; }
section { margin-bottom: 1.5em; } img { max-width: 100%; border: 1px solid #ddd; margin-right: 1em; }
</style></head><body>
<h1>ecgwb dashboard</h1>
]])
  w(string.format('<p>%s &middot; %d job%s &middot; reloads every 2 s</p>\n', esc(os.date("%H:%M:%S")),
    #list, #list == 1 and "" or "s"))
  if #list == 0 then
    w("<p>No jobs yet: start one with wb.run(...), or call wb.report{ step = , loss = } in a task.</p>\n")
  else
    w('<table id="jobs"><tr><th>job</th><th>name</th><th>status</th><th>step</th><th>loss</th><th>reports</th></tr>\n')
    for _, t in ipairs(list) do
      local m, st = t._metrics, status(t)
      local step = num(m.step) .. (m.total and ("/" .. num(m.total)) or "")
      w(string.format('<tr id="job-%d"><td>%d</td><td class="name">%s</td><td class="status %s">%s</td>' ..
        '<td class="num step">%s</td><td class="num loss">%s</td><td class="num">%d</td></tr>\n',
        t.id, t.id, esc(t.name), esc(st), esc(st), step, num(m.loss), #t.history))
    end
    w("</table>\n")
    for _, t in ipairs(list) do
      local has_loss, e = #loss_keys(t) > 0, t.dashboard_ecg
      if has_loss or e then
        w(string.format('<section id="figures-%d"><h2>job %d: %s</h2>\n', t.id, t.id, esc(t.name)))
        if has_loss then
          w(string.format('<img src="/loss/%d.png?n=%d" alt="loss curve of job %d" width="591" height="354">\n',
            t.id, #t.history, t.id))
        end
        if e then
          w(string.format('<img src="/ecg/%d.png?v=%d" alt="latest ECG of job %d">\n', t.id, e.version, t.id))
        end
        w("</section>\n")
      end
    end
  end
  w('<p><a href="/jobs.json">jobs.json</a></p>\n</body></html>\n')
  return table.concat(out)
end

------------------------------------------------------------------ routes
-- the answer to a GET of target: status, content type, body
function M.handle(target)
  local path = target:match("^[^?#]*")
  -- only plain names: no escapes, no dot segments (no file is read anyway)
  if path:find("[^%w/%._%-]") or path:find("..", 1, true) or path:find("//", 1, true) then
    return 404, TEXT, "404 Not Found\n"
  end
  if path == "/" or path == "/index.html" then return 200, HTML, M.page() end
  if path == "/jobs.json" then return 200, JSON, M.jobs_json() end
  local what, id = path:match("^/(%a+)/(%d+)%.png$")
  if (what == "loss" or what == "ecg") and #id < 10 then
    local t = find_job(tonumber(id))
    local png = t and (what == "loss" and loss_png(t) or what == "ecg" and ecg_png(t))
    if png then return 200, PNG, png end
  end
  return 404, TEXT, "404 Not Found\n"
end

------------------------------------------------------------------ the server
local port_out = ffi.new("int[1]")

-- starts serving on host (default 127.0.0.1) and port (0: a free one);
-- returns { url =, host =, port = }
function M.start(port, o)
  o = o or {}
  if type(port) ~= "number" or port ~= math.floor(port) or port < 0 or port > 65535 then
    error("dashboard: port must be an integer in 0..65535, got " .. tostring(port), 2)
  end
  if server then error("dashboard: already serving at " .. server.url, 2) end
  local host = o.host or "127.0.0.1"
  local id = loop._new_event_id()
  I.check(C.ewb_dashboard_start(host, port, id, port_out), 2)
  loop._listen(id)
  local s = { id = id, host = host, port = port_out[0] }
  s.url = string.format(host:find(":", 1, true) and "http://[%s]:%d/" or "http://%s:%d/", host, s.port)
  server = s
  s.task = loop.spawn(function()
    while true do
      local req = loop._wait_event(id, function() end)
      local p = C.ewb_dashboard_path(req)
      if p ~= nil then
        local ok, code, ctype, body = pcall(M.handle, ffi.string(p))
        if not ok then
          io.stderr:write("ecgwb: dashboard: ", tostring(code), "\n")
          code, ctype, body = 500, TEXT, "500 Internal Server Error\n"
        end
        C.ewb_dashboard_respond(req, code, ctype, body, #body)
      end
    end
  end)
  s.task.name = "dashboard"
  table.insert(s.task.finalizers, function()
    if server == s then C.ewb_dashboard_stop(); loop._listen(id, false); server = nil end
  end)
  return s
end

-- stops the server (its connections are closed)
function M.stop()
  if not server then return end
  local s = server
  C.ewb_dashboard_stop()
  server = nil
  s.task:stop()
end

-- the server's { url, host, port }, or nil
function M.server() return server end

return setmetatable(M, { __call = function(_, port, o) return M.start(port, o) end })
