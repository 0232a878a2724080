--[[ ecgwb.loop: the event loop's scheduler. Recipes are coroutines ("tasks")
run on libuv's loop (core/loop.c); slow C work runs on a C worker thread.

  local t = wb.spawn(function(x) wb.sleep(100); return x * 2 end, 21)
  wb.await(t)                        --> 42 (joins a task; raises its error)
  local tm = wb.timer(0, 500, function() print("tick") end)  -- tm:stop()
  local ecg = wb.await(wb.loop.sim_batch { fs = 250, seconds = 4, index = 0, count = 32 })
  local x = wb.await(wb.loop.h5_read("data.h5", "x"))
  job = wb.run("recipes/x.lua", { steps = 100 })   -- in the REPL: trains in the background
  job:status() job:metrics() job:pause() job:resume() job:stop() job:wait() job:fg()
  wb.loop.pending()                  --> { "sleep 100 ms in task 2 (event 1 awaited by task 2)" }

How it runs. `ecgwb FILE.lua` runs the script as the main task and exits when
no task is ready and no timer or work is pending. In the REPL, tasks run while
the prompt waits for input (the REPL reads stdin from the same loop), so a
command answers once the running task yields: a training loop calls
wb.yield() (or wb.report / a progress bar's update, which yield) every step.
Called outside a task (code typed at the REPL), wb.sleep / wb.await / job:wait
drive the loop themselves until done, and other tasks keep running.

Nothing in C calls back into Lua: timers and finished work queue events that
this scheduler drains (ewb_loop_next_event) on the loop thread, and the worker
thread only touches C buffers. A task's error is printed with its traceback
when it dies, unless something awaits the task, which then re-raises it.

Ctrl-C stops the foreground: in a script the main task, in the REPL the
command being run (job:fg() waits for a job and stops it on Ctrl-C; job:wait()
only stops waiting). The core notes each Ctrl-C while the scheduler runs and
the scheduler delivers it at the foreground's next yield, never inside a
background task.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

local STOP = setmetatable({}, { __tostring = function() return "stopped" end })
local RESUME_EVENT, RESUME_GO, RESUME_STOP, RESUME_INTERRUPT = 1, 2, 3, 4

------------------------------------------------------------------ state
local ready_q, ready_head, ready_tail = {}, 1, 0 -- FIFO of tasks to resume
local waiters = {}      -- event id -> the task (or nested-wait record) blocked on it
local early = {}        -- event id -> list of statuses that came while nobody waited
local listeners = {}   -- event ids of other modules' sources (dashboard): delivered, not counted
-- event id -> { what = "sleep 5 ms", once = true } while a timer or work may
-- still send events; a one-shot source (work, a timer without repeat) ends
-- when its event is drained
local sources = {}
local nsources = 0
local orphans = {}      -- work id -> cdata of work whose waiter left, freed when its event comes
local next_event_id, next_task_id = 0, 0
local current = nil     -- the task being resumed
local main_task = nil   -- the foreground task of a script (ecgwb FILE.lua)
local interrupted = false -- a Ctrl-C taken and not yet delivered
local alive = {}        -- task id -> task, until it ends
M.failures = 0          -- tasks that died of an error nobody awaited

local function new_event_id()
  next_event_id = next_event_id + 1
  return next_event_id
end
local function add_source(id, what, once)
  if not sources[id] then sources[id] = { what = what, once = once }; nsources = nsources + 1 end
end
local function drop_source(id) if sources[id] then sources[id] = nil; nsources = nsources - 1 end end

-- tests only: a source with nothing behind it in C (what a lost event leaves)
function M._debug_add_source(what)
  local id = new_event_id()
  add_source(id, what, true)
  return id
end
M._debug_drop_source = function(id) drop_source(id) end

-- what the loop waits for: a list of "what (event id)" strings
function M.pending()
  local ids = {}
  for id in pairs(sources) do ids[#ids + 1] = id end
  table.sort(ids)
  local list = {}
  for i, id in ipairs(ids) do
    local s = sources[id]
    local who = waiters[id] and (waiters[id].co and (" awaited by " .. waiters[id].name) or " awaited") or ""
    list[i] = string.format("%s (event %d%s%s)", s.what, id, orphans[id] and ", orphaned" or "", who)
  end
  return list
end

local function push_ready(task, how, value)
  task.state = "ready"
  task.resume_how, task.resume_value = how, value
  if task.paused then task.parked = true; return end -- queued when resumed
  ready_tail = ready_tail + 1
  ready_q[ready_tail] = task
end
local function pop_ready()
  if ready_head > ready_tail then return nil end
  local t = ready_q[ready_head]
  ready_q[ready_head] = nil
  ready_head = ready_head + 1
  return t
end
local function nready() return ready_tail - ready_head + 1 end

local function raise_interrupt()
  debug.sethook()          -- a Ctrl-C hook that has not fired yet
  C.ewb_set_interrupt(0)
  error("interrupted", 0)
end

------------------------------------------------------------------ tasks
local Task = {}
Task.__index = Task
M.Task = Task

local function current_task()
  local t = current
  if t and t.co == coroutine.running() then return t end
  return nil
end
M.current = current_task
-- the task of a script's main chunk (nil in the REPL)
function M.main_task() return main_task end

local function errmsg(e)
  if e == STOP then return e end
  local ok, s = pcall(tostring, e)
  return debug.traceback(ok and s or "(error object)", 1)
end

M.err_out = io.stderr -- where failures of tasks nobody awaits are reported
local function report_failure(task)
  M.failures = M.failures + 1
  local out = M.err_out
  if task == main_task then
    out:write(tostring(task.error), "\n")
  else
    out:write(string.format("ecgwb: task %d (%s) failed: %s\n", task.id, task.name, tostring(task.error)))
  end
  out:flush()
end

local function finish(task, ok, ...)
  for i = #task.finalizers, 1, -1 do pcall(task.finalizers[i]) end
  alive[task.id] = nil
  task.finished_at = C.ewb_now()
  if ok then
    task.state = "done"
    task.results = { n = select("#", ...), ... }
  elseif (...) == STOP then
    task.state = "stopped"
  else
    task.state = "failed"
    task.error = (...)
  end
  local joiners = task.joiners
  task.joiners = {}
  for _, j in ipairs(joiners) do
    if type(j) == "table" and j.co then push_ready(j, RESUME_EVENT, 0) else j.done = true end
  end
  if task.state == "failed" and #joiners == 0 then report_failure(task) end
end

function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("spawn: expected a function, got " .. type(fn), 2) end
  next_task_id = next_task_id + 1
  local task = setmetatable({ id = next_task_id, name = "task " .. next_task_id, state = "ready",
    _metrics = {}, history = {}, joiners = {}, finalizers = {}, started_at = C.ewb_now() }, Task)
  local args = { n = select("#", ...), ... }
  task.co = coroutine.create(function(how)
    if how == RESUME_STOP or task.stop_requested then return finish(task, false, STOP) end
    finish(task, xpcall(fn, errmsg, unpack(args, 1, args.n)))
  end)
  alive[task.id] = task
  push_ready(task, RESUME_GO)
  return task
end

-- resumes one task; the foreground flag tells the host's Ctrl-C handler
-- whether it may raise in the running Lua code (only in the foreground task)
local function run(task)
  if task.state ~= "ready" then return end -- ended after it was queued
  if task.paused then task.parked = true; return end
  task.state = "running"
  local prev = current
  current = task
  C.ewb_loop_set_foreground(task == main_task and 1 or 0)
  local ok, err = coroutine.resume(task.co, task.resume_how, task.resume_value)
  C.ewb_loop_set_foreground(0)
  current = prev
  if not ok then -- an error outside the task's xpcall (should not happen): report it
    task.state, task.error = "failed", debug.traceback(task.co, tostring(err))
    alive[task.id] = nil
    report_failure(task)
  elseif task.state == "running" then
    task.state = "ready" -- a plain coroutine.yield() from the task: run it again
    push_ready(task, RESUME_GO)
  end
end

-- what a task does after it is resumed at a yield point
local function check_resume(task, how)
  if how == RESUME_STOP or task.stop_requested then error(STOP, 0) end
  if how == RESUME_INTERRUPT then raise_interrupt() end
end

------------------------------------------------------------------ events
local function deliver(id, status)
  local w = waiters[id]
  if orphans[id] then
    C.ewb_work_free(orphans[id])
    orphans[id] = nil
    drop_source(id)
    return
  end
  local src = sources[id]
  if not src and not listeners[id] then return end -- queued before its timer was freed: nobody can want it
  if src and src.once then drop_source(id) end -- it sends nothing more
  if not w then
    local list = early[id] or {}
    list[#list + 1] = status
    early[id] = list
    return
  end
  waiters[id] = nil
  if w.co then
    w.wait_id, w.wait_cancel = nil, nil
    push_ready(w, RESUME_EVENT, status)
  else
    w.done, w.status = true, status
  end
end

local ev = ffi.new("ewb_event")
local function drain_events()
  while C.ewb_loop_next_event(ev) ~= 0 do deliver(tonumber(ev.id), ev.status) end
end

local function check_interrupt()
  if C.ewb_loop_take_interrupt() ~= 0 then
    -- the scheduler delivers it: a hook the host set for the foreground
    -- must not fire in the next (background) task
    debug.sethook()
    C.ewb_set_interrupt(0)
    interrupted = true
  end
  return interrupted
end

-- one round: the tasks ready now run once each, then libuv polls (and waits
-- when block is set, nothing is ready and a timer or work is pending, or
-- block is "always": the host's stdin poll is then active), then events are
-- drained. Stops early when a Ctrl-C is taken (`interrupted` tells the caller).
local function tick(block)
  local fg = C.ewb_loop_foreground()
  C.ewb_loop_set_foreground(0)
  drain_events()
  for _ = 1, nready() do
    if check_interrupt() then break end
    local t = pop_ready()
    if not t then break end
    run(t)
    drain_events()
  end
  local stuck = false
  if not check_interrupt() then
    local wait = block and nready() == 0 and (nsources > 0 or block == "always")
    -- 1: asked to wait, but no timer, work or handle is active in C
    stuck = C.ewb_loop_run(wait and 1 or 0) == 1
    drain_events()
    check_interrupt()
  end
  C.ewb_loop_set_foreground(fg)
  if stuck and nsources > 0 and nready() == 0 and not interrupted then
    -- a source whose event was lost or never drained: a scheduler bug.
    -- Blocking would hang for ever; say what it waits for instead.
    error("loop: waiting for " .. table.concat(M.pending(), ", ") ..
      ", but no timer or work is active that could still send their events (an ecgwb scheduler bug)", 0)
  end
end

local function has_work() return nready() > 0 or nsources > 0 end
M.has_work = has_work

-- outside a task: drive the loop until done() is true; a Ctrl-C raises
-- "interrupted" here, in the foreground
local function drive_until(done, on_interrupt)
  while not done() do
    if not has_work() then error("the loop has nothing left to run, but what this waits for has not happened", 3) end
    tick(true)
    if interrupted then
      interrupted = false
      if on_interrupt then on_interrupt() end
      raise_interrupt()
    end
  end
end

-- waits for event id: yields in a task, drives the loop outside one.
-- cancel() is called if the wait ends by stop or Ctrl-C.
local function wait_event(id, cancel)
  local e = early[id]
  if e then
    local s = table.remove(e, 1)
    if #e == 0 then early[id] = nil end
    return s
  end
  local task = current_task()
  if task then
    if task.stop_requested then cancel(); error(STOP, 0) end
    waiters[id] = task
    task.state, task.wait_id, task.wait_cancel = "waiting", id, cancel
    local how, value = coroutine.yield()
    if how ~= RESUME_EVENT then cancel() end
    check_resume(task, how)
    return value
  end
  local rec = {}
  waiters[id] = rec
  drive_until(function() return rec.done end, function() waiters[id] = nil; cancel() end)
  return rec.status
end

-- for other modules' event sources (wb.dashboard): a fresh event id whose
-- events are delivered (listen) without keeping the loop alive as a source
-- does, and a wait for its next event (status returned)
M._new_event_id = new_event_id
M._wait_event = wait_event
function M._listen(id, on) listeners[id] = on ~= false or nil end

-- ends a task's wait at once (stop, Ctrl-C): it resumes with `how`
local function abort_wait(task, how)
  if task.state == "waiting" then
    waiters[task.wait_id] = nil
    task.wait_id, task.wait_cancel = nil, nil
    push_ready(task, how)
  elseif task.state == "ready" then
    task.resume_how = how
  end
end

------------------------------------------------------------------ sleep, yield, timers
local timer_out = ffi.new("ewb_timer*[1]")

local function start_timer(ms, repeat_ms, what)
  local id = new_event_id()
  I.check(C.ewb_timer_start(timer_out, id, ms, repeat_ms or 0), 3)
  add_source(id, what, not (repeat_ms and repeat_ms > 0))
  return id, timer_out[0]
end

-- pauses the calling task (or, outside a task, runs the loop) for ms milliseconds
function M.sleep(ms)
  if type(ms) ~= "number" or not (ms >= 0) then error("sleep: expected milliseconds >= 0, got " .. tostring(ms), 2) end
  local task = current_task()
  local id, h = start_timer(ms, 0, string.format("sleep %g ms%s", ms, task and (" in " .. task.name) or ""))
  local function cancel() C.ewb_timer_free(h); drop_source(id); early[id] = nil end
  wait_event(id, cancel)
  C.ewb_timer_free(h)
  drop_source(id)
end

-- lets the other tasks run (and the REPL answer); returns at once when alone
function M.yield()
  local task = current_task()
  if task then
    if task.stop_requested then error(STOP, 0) end
    push_ready(task, RESUME_GO)
    local how = coroutine.yield()
    check_resume(task, how)
    return
  end
  if current == nil then -- the foreground, outside any task: one round without waiting
    tick(false)
    if interrupted then interrupted = false; raise_interrupt() end
  end
end

local Timer = {}
Timer.__index = Timer
-- calls fn() after ms, then every repeat_ms (0 or nil: once), in its own task,
-- until fn returns false or timer:stop()
function M.timer(ms, repeat_ms, fn)
  if type(repeat_ms) == "function" then repeat_ms, fn = 0, repeat_ms end
  if type(fn) ~= "function" then error("timer: expected a function", 2) end
  repeat_ms = repeat_ms or 0
  local id, h = start_timer(ms, repeat_ms, string.format("timer %g ms, repeat %g ms", ms, repeat_ms))
  local self = setmetatable({ count = 0 }, Timer)
  self.task = M.spawn(function()
    repeat
      wait_event(id, function() end)
      self.count = self.count + 1
    until fn(self) == false or repeat_ms == 0
  end)
  self.task.name = "timer"
  table.insert(self.task.finalizers, function() C.ewb_timer_free(h); drop_source(id); early[id] = nil end)
  return self
end
function Timer:stop() self.task:stop() end

------------------------------------------------------------------ work on the C worker
local Work = {}
Work.__index = Work
M.Work = Work
local work_out = ffi.new("ewb_work*[1]")
local KINDS = { sleep = C.EWB_WORK_SLEEP, h5_read = C.EWB_WORK_H5_READ, h5_write = C.EWB_WORK_H5_WRITE,
  sim_batch = C.EWB_WORK_SIM_BATCH, call = C.EWB_WORK_CALL }

-- submits C work: { kind = "sleep"|"h5_read"|"h5_write"|"sim_batch"|"call", ... }
function M.submit(o)
  local kind = KINDS[o.kind]
  if not kind then error("submit: unknown kind '" .. tostring(o.kind) .. "'", 2) end
  local p = ffi.new("ewb_work_params")
  p.kind = kind
  p.ms = o.ms or 0
  p.file, p.name = o.file, o.name -- copied by ewb_work_submit
  if o.tensor then p.tensor = o.tensor.ptr end
  p.truncate = o.truncate and 1 or 0
  if o.sim then wb.sim.config(o.sim, p.sim, "sim_batch") end -- the options of wb.sim.ecg
  p.count = o.count or 0
  if o.fn then p.fn, p.arg = o.fn, o.arg end
  local id = new_event_id()
  I.check(C.ewb_work_submit(work_out, p, id), 2)
  add_source(id, "work " .. o.kind, true)
  return setmetatable({ id = id, h = work_out[0], kind = o.kind, keep = o.keep or o.arg }, Work)
end

function M.work_sleep(ms) return M.submit { kind = "sleep", ms = ms } end
function M.h5_read(file, name) return M.submit { kind = "h5_read", file = file, name = name } end
function M.h5_write(file, name, t, truncate) return M.submit { kind = "h5_write", file = file, name = name, tensor = t, truncate = truncate } end
-- records index .. index+count-1 of wb.sim.ecg's simulator (same options,
-- conditions too): f32 (count, 12, fs*seconds)
function M.sim_batch(o)
  local sim = {}
  for k, v in pairs(o) do if k ~= "count" then sim[k] = v end end
  return M.submit { kind = "sim_batch", sim = sim, count = o.count or 1 }
end

function Work:state()
  if self.result_taken then return "done" end
  local s = C.ewb_work_state(self.h)
  return s == C.EWB_WORK_QUEUED and "queued" or s == C.EWB_WORK_RUNNING and "running" or "done"
end

local result_out = ffi.new("ewb_tensor*[1]")
-- waits for the work; returns its tensor (or true), raises its error
function Work:wait()
  if self.result_taken then error("await: this work was already awaited", 2) end
  local id, h = self.id, self.h
  local function cancel()
    -- free it now unless its event is still to come (it runs, or its event
    -- is queued in C): once the event was drained (to this waiter, or to
    -- `early` after a stop or Ctrl-C took the waiter away) no other will
    -- come, and an orphan waiting for one would keep the loop waiting forever
    if C.ewb_work_cancel(h) == 1 or not sources[id] then C.ewb_work_free(h); drop_source(id)
    else orphans[id] = h end
    early[id] = nil
    self.result_taken = true
  end
  wait_event(id, cancel)
  drop_source(id)
  self.result_taken = true
  local rc = C.ewb_work_result(h, result_out)
  local t = result_out[0]
  C.ewb_work_free(h)
  if rc ~= 0 then error(ffi.string(C.ewb_last_error()), 2) end
  if t ~= nil then return I.wrap(t) end
  return true
end

------------------------------------------------------------------ tasks and jobs
-- waits for the task to end: its results, or its error raised again
function Task:wait()
  if alive[self.id] then
    local me = current_task()
    if me == self then error("wait: a task cannot wait for itself", 2) end
    if me then
      self.joiners[#self.joiners + 1] = me
      me.state = "waiting"
      local how = coroutine.yield()
      if how ~= RESUME_EVENT then
        for i, j in ipairs(self.joiners) do if j == me then table.remove(self.joiners, i) break end end
      end
      check_resume(me, how)
    else
      local rec = {}
      self.joiners[#self.joiners + 1] = rec
      drive_until(function() return rec.done end, function()
        for i, j in ipairs(self.joiners) do if j == rec then table.remove(self.joiners, i) break end end
      end)
    end
  end
  if self.state == "failed" then error(self.error, 0) end
  if self.state == "stopped" then error("task " .. self.id .. " (" .. self.name .. ") was stopped", 2) end
  return unpack(self.results, 1, self.results.n)
end

-- waits like wait(), but Ctrl-C stops the task too: a job in the foreground
function Task:fg()
  local results = { pcall(self.wait, self) }
  if not results[1] then
    if tostring(results[2]):find("interrupted", 1, true) then self:stop() end
    error(results[2], 0)
  end
  return unpack(results, 2, table.maxn(results))
end

-- "running" (its turn comes, or it runs), "waiting" (a timer, work or task),
-- "paused", "done", "failed" or "stopped"
function Task:status()
  if self.paused and alive[self.id] then return "paused" end
  return self.state == "ready" and "running" or self.state
end
function Task:metrics() return self._metrics end
function Task:pause()
  if alive[self.id] then self.paused = true end -- takes effect at its next yield
  return self
end
function Task:resume()
  if self.paused then
    self.paused = false
    if self.parked then self.parked = false; ready_tail = ready_tail + 1; ready_q[ready_tail] = self end
  end
  return self
end
-- stops the task at its next yield point (at once if it waits on a timer or work)
function Task:stop()
  if not alive[self.id] then return self end
  if current_task() == self then error(STOP, 0) end
  self.stop_requested = true
  if self.paused then self.paused = false; if self.parked then self.parked = false; push_ready(self, RESUME_STOP) end end
  if self.state == "waiting" and self.wait_id then
    abort_wait(self, RESUME_STOP) -- the task runs its wait's cancel when it resumes
  elseif self.state == "waiting" then -- waiting on another task
    for _, t in pairs(alive) do
      for i, j in ipairs(t.joiners) do if j == self then table.remove(t.joiners, i) break end end
    end
    push_ready(self, RESUME_STOP)
  elseif self.state == "ready" then
    self.resume_how = RESUME_STOP
  end
  return self
end
function Task:__tostring()
  local m = self._metrics
  local s = string.format("%s %d %s: %s", self.kind or "task", self.id, self.name, self:status())
  if m.step then s = s .. string.format(", step %s%s", m.step, m.total and ("/" .. m.total) or "") end
  if m.loss then s = s .. string.format(", loss %.4g", m.loss) end
  return s
end

-- in a task, lets the others run; elsewhere nothing
function M.maybe_yield()
  if current_task() then M.yield() end
end

-- the metrics of the calling task (or of the foreground): merges t and keeps
-- a history; in a task it then yields, so a training loop that reports each
-- step keeps the REPL answering
M.foreground = { id = 0, name = "foreground", _metrics = {}, history = {} }
-- the tasks that reported metrics or were started by wb.run, oldest first
-- (what the dashboard lists); at most 100, the oldest ended ones go first
M.reported = {}
local function note_reporter(task)
  if task.listed then return end
  task.listed = true
  local list = M.reported
  list[#list + 1] = task
  if #list > 100 then
    for i, t in ipairs(list) do
      if t == M.foreground or not alive[t.id] then table.remove(list, i) t.listed = nil break end
    end
  end
end
function M.report(t, no_yield)
  local task = current_task() or M.foreground
  note_reporter(task)
  local m, h = task._metrics, task.history
  local row = { time = C.ewb_now() }
  for k, v in pairs(t) do m[k] = v; row[k] = v end
  h[#h + 1] = row
  if #h > 20000 then table.remove(h, 1) end
  if not no_yield and task ~= M.foreground then M.yield() end
  return m
end

-- starts a recipe file as a background job: the chunk gets opts as `...`
function M.run(path, opts, run_opts)
  local fn, err = loadfile(path)
  if not fn then error("run: " .. err, 2) end
  local task = M.spawn(fn, opts or {})
  task.name, task.kind, task.path = path, "job", path
  task.quiet = run_opts and run_opts.quiet
  note_reporter(task)
  return task
end

-- await(x): a Work's result or a task's results
function M.await(x)
  local mt = getmetatable(x)
  if mt == Work or mt == Task then return x:wait() end
  error("await: expected work (wb.loop.submit ...) or a task (wb.spawn ...), got " .. type(x), 2)
end

function M.tasks()
  local list = {}
  for _, t in pairs(alive) do list[#list + 1] = t end
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

------------------------------------------------------------------ the host's entry points
-- ecgwb FILE.lua: fn runs as the main task; returns true on success. With
-- wait_all, the loop then runs until no task is ready and nothing is pending
-- (otherwise the REPL follows, and the tasks go on there).
function M._main(wait_all, fn, ...)
  main_task = M.spawn(fn, ...)
  main_task.name = "main"
  local ok = true
  while true do
    local main_alive = alive[main_task.id] ~= nil
    if not main_alive and main_task.state ~= "done" then break end
    if not main_alive and not wait_all then break end
    if not has_work() then
      if main_alive then
        io.stderr:write("ecgwb: the main task waits for something that never comes (a paused task?)\n")
        ok = false
      end
      break
    end
    tick(true)
    if interrupted then
      interrupted = false
      if alive[main_task.id] then
        local t = main_task
        if t.state == "waiting" and t.wait_id then
          abort_wait(t, RESUME_INTERRUPT)
        elseif t.state == "waiting" then
          for _, o in pairs(alive) do
            for i, j in ipairs(o.joiners) do if j == t then table.remove(o.joiners, i) break end end
          end
          push_ready(t, RESUME_INTERRUPT)
        else
          t.paused = false
          if t.parked then t.parked = false; push_ready(t, RESUME_INTERRUPT) else t.resume_how = RESUME_INTERRUPT end
        end
      else
        io.stderr:write("interrupted\n")
        ok = false
        break
      end
    end
  end
  if main_task.state ~= "done" or M.failures > 0 then ok = false end
  if not ok or wait_all then
    for _, t in ipairs(M.tasks()) do t:stop() end
    -- let stopped tasks unwind (their finalizers free timers); work still
    -- running on the worker is left to finish as the process exits
    for _ = 1, 3 do if nready() == 0 then break end tick(false) end
  end
  main_task = nil
  return ok
end

-- the REPL, waiting for input: one round of the tasks and of libuv (the
-- host's stdin poll is a libuv handle); a Ctrl-C here only drops the line
function M._tick()
  tick("always")
  interrupted = false
end

-- wb.spawn, wb.sleep, ... at the top level
for _, k in ipairs { "spawn", "sleep", "yield", "timer", "await", "run", "report" } do rawset(wb, k, M[k]) end
return M
