-- tests/test_loop.lua: the event loop (core/loop.c, lua/ecgwb/loop.lua) and
-- progress bars (lua/ecgwb/progress.lua). Runs as the main task of the loop.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local loop = wb.loop
local C = wb.C
-- which part runs, on stderr (unbuffered): a hang in the log is attributable
local function step(name) io.stderr:write("-- ", name, "\n") end
-- a gate for work that must run until the test lets it end: a "call" work
-- of sem_wait on it holds the worker until sem_post (no timing assumptions
-- on a loaded machine)
local ffi = wb.ffi
ffi.cdef [[ int sem_init(void *sem, int pshared, unsigned value); int sem_post(void *sem);
            int sem_wait(void *sem); int sem_destroy(void *sem); ]]
local gate = ffi.new("uint64_t[8]") -- a sem_t (32 bytes on Linux)
ffi.C.sem_init(gate, 0, 0)
local sem_wait = ffi.cast("int (*)(void *)", ffi.C.sem_wait)
local function held_work() return loop.submit { kind = "call", fn = sem_wait, arg = gate } end
local function open_gate() ffi.C.sem_post(gate) end

T.ok(loop.current() ~= nil and loop.current().name == "main", "a script runs as the main task")

step "spawn and sleep"
-- spawn and sleep: spawned tasks start when the spawner yields, in order;
-- sleepers wake in the order of their deadlines, never early
do
  local order = {}
  local t0 = wb.now()
  local a = wb.spawn(function() wb.sleep(60); order[#order + 1] = "a"; return wb.now() - t0 end)
  local b = wb.spawn(function() wb.sleep(20); order[#order + 1] = "b" end)
  local c = wb.spawn(function(x, y) order[#order + 1] = "c" .. x .. y end, 1, 2)
  T.ok(#order == 0, "spawned tasks wait until the spawner yields")
  wb.yield()
  T.ok(order[1] == "c12", "a task without a wait runs at the first yield, with its arguments: " .. tostring(order[1]))
  local elapsed = wb.await(a)
  T.ok(table.concat(order, ",") == "c12,b,a", "wake-up order by deadline: " .. table.concat(order, ","))
  T.ok(elapsed >= 0.060, "sleep(60) never wakes early: " .. elapsed)
  T.ok(a:status() == "done" and b:status() == "done" and c:status() == "done", "tasks end as done")
  -- a task's results come back through await
  local t = wb.spawn(function(x) wb.sleep(1); return x * 2, "two" end, 21)
  local r1, r2 = wb.await(t)
  T.ok(r1 == 42 and r2 == "two", "await(task) gives its results")
  T.fails(function() wb.sleep(-1) end, "sleep: expected milliseconds >= 0", "negative sleep")
  T.fails(function() wb.spawn(42) end, "spawn: expected a function", "spawn of a number")
end

step "timers"
-- timers: a repeating timer until fn returns false; a one-shot; stop()
do
  local ticks, times = 0, {}
  local t0 = wb.now()
  local tm = wb.timer(0, 15, function() ticks = ticks + 1; times[ticks] = wb.now() - t0; return ticks < 5 end)
  local once = 0
  wb.timer(10, function() once = once + 1 end)
  local stopped = 0
  local st = wb.timer(5, 5, function() stopped = stopped + 1 end)
  wb.sleep(30)
  while stopped < 2 do wb.sleep(5) end -- a starved process may see fewer ticks in 30 ms
  st:stop()
  local at_stop = stopped
  wb.await(tm.task)
  T.ok(ticks == 5, "a repeating timer runs until fn returns false: " .. ticks)
  -- libuv schedules repeats from the due time on its millisecond clock, so
  -- each interval may be short by < 1 ms of wall time
  T.ok(times[5] >= 0.060 - 0.004, "5 ticks 15 ms apart take >= 60 ms: " .. times[5])
  T.ok(times[5] < 0.5, "and not much more: " .. times[5])
  T.ok(once == 1, "a one-shot timer fires once: " .. once)
  wb.sleep(30)
  T.ok(at_stop >= 2 and stopped == at_stop, string.format("timer:stop() stops it (%d then %d)", at_stop, stopped))
  T.ok(st.task:status() == "stopped", "a stopped timer's task is stopped: " .. st.task:status())
end

step "work on the worker"
-- await: C work on the worker thread while another task keeps running
do
  local spins, running = 0, true -- spins: rounds seen while the work was running
  local w = loop.work_sleep(200) -- 200 ms on the worker
  local spinner = wb.spawn(function()
    while running do
      if C.ewb_work_state(w.h) == C.EWB_WORK_RUNNING then spins = spins + 1 end
      wb.sleep(5)
    end
  end)
  local t0 = wb.now()
  local r = wb.await(w)
  local dt = wb.now() - t0
  running = false
  wb.await(spinner)
  T.ok(r == true, "work without a tensor gives true")
  T.ok(dt >= 0.2, "await returns after the work: " .. dt)
  -- 5 ms rounds in 200 ms: about 30 on an idle machine, fewer when starved
  T.ok(spins >= 3, "another task ran while the work ran: " .. spins .. " rounds")

  -- a simulation batch equals the records simulated one by one
  local cfg = { fs = 100, seconds = 2, hr = 75, hr_std = 1, seed = 3, index = 10 }
  local batch = wb.await(loop.sim_batch { fs = 100, seconds = 2, hr = 75, hr_std = 1, seed = 3, index = 10, count = 3 })
  T.ok(batch:size(1) == 3 and batch:size(2) == 12 and batch:size(3) == 200, "sim_batch shape " .. tostring(batch))
  for i = 0, 2 do
    cfg.index = 10 + i
    T.close(batch[i + 1], (wb.sim.ecg(cfg)), 0, "sim_batch record " .. i .. " equals wb.sim.ecg")
  end

  -- HDF5 write then read on the worker
  local file = os.tmpname()
  local x = wb.randn(4, 5)
  T.ok(wb.await(loop.h5_write(file, "g/x", x, true)) == true, "h5_write work")
  local y = wb.await(loop.h5_read(file, "g/x"))
  T.close(y, x, 0, "h5_read work gives back what h5_write wrote")
  local ok, err = pcall(wb.await, loop.h5_read(file, "nope"))
  T.ok(not ok and tostring(err):find("nope", 1, true), "a failed work raises its C error: " .. tostring(err))
  os.remove(file)
  T.fails(function() loop.submit { kind = "bogus" } end, "submit: unknown kind 'bogus'", "unknown work kind")
  T.fails(function() loop.submit { kind = "h5_read" } end, "h5_read: needs a file", "h5_read without a file")
  T.fails(function() loop.submit { kind = "sim_batch", count = 0 } end, "count must be >= 1", "sim_batch count 0")
  T.fails(function() loop.sim_batch { count = 1, bogus = 1 } end, "unknown option 'bogus'", "sim_batch with an unknown option")
  local afib = wb.await(loop.sim_batch { fs = 100, seconds = 2, rhythm = "afib", seed = 4, index = 7, count = 1 })
  T.close(afib[1], (wb.sim.ecg { fs = 100, seconds = 2, rhythm = "afib", seed = 4, index = 7 }), 0, "sim_batch passes conditions on")
  local w = loop.work_sleep(1)
  wb.await(w)
  T.fails(function() wb.await(w) end, "already awaited", "awaiting work twice")
  T.fails(function() wb.await(42) end, "await: expected work", "await of a number")

  -- works run in submission order on one lane
  local a, b = loop.work_sleep(60), loop.work_sleep(1)
  local tb = wb.now()
  wb.await(b)
  T.ok(wb.now() - tb >= 0.055, "the worker runs work in order (b waited for a)")
  wb.await(a)
end

step "errors in tasks"
-- errors in tasks: re-raised with the task's traceback by whoever awaits,
-- else reported (on loop.err_out) when the task dies
do
  local function inner_boom() error("boom in a task") end
  local t = wb.spawn(function() wb.sleep(1); inner_boom() end)
  local ok, err = pcall(wb.await, t)
  T.ok(not ok and err:find("boom in a task", 1, true), "await re-raises the task's error: " .. tostring(err))
  T.ok(err:find("stack traceback:", 1, true) and err:find("inner_boom", 1, true), "with the task's traceback: " .. err)
  T.ok(t:status() == "failed", "the task is failed")

  local log = os.tmpname()
  local f = io.open(log, "w")
  loop.err_out = f
  local before = loop.failures
  local function lonely() error("nobody waits for me") end
  wb.spawn(function() lonely() end)
  wb.sleep(5)
  loop.err_out = io.stderr
  f:close()
  local text = io.open(log):read("*a")
  os.remove(log)
  T.ok(text:find("failed: ", 1, true) and text:find("nobody waits for me", 1, true), "an unawaited error is reported: " .. text)
  T.ok(text:find("stack traceback:", 1, true) and text:find("lonely", 1, true), "with its traceback: " .. text)
  T.ok(loop.failures == before + 1, "and counted (the script then exits 1)")
  loop.failures = before
end

step "jobs"
-- jobs: pause, resume, stop; metrics through wb.report
do
  local recipe = os.tmpname()
  local f = io.open(recipe, "w")
  f:write [[
local wb = require "ecgwb"
local opts = ...
local step = 0
while true do
  step = step + 1
  wb.report { step = step, loss = 1 / step, lr = opts.lr }
  if opts.sleepy then wb.sleep(1e6) end
end
]]
  f:close()
  local job = wb.run(recipe, { lr = 0.5 })
  T.ok(job:status() == "running", "a new job is running: " .. job:status())
  wb.sleep(20)
  T.ok(job:status() == "running" and job:metrics().step > 0, "the job runs while the main task sleeps: step " .. tostring(job:metrics().step))
  T.ok(job:metrics().lr == 0.5 and job:metrics().loss == 1 / job:metrics().step, "metrics hold what the job reported")
  -- the history keeps every report up to its cap of 20,000 rows (wb.report
  -- drops the oldest beyond it; a quiet machine runs more than 20,000 of these
  -- steps in the 20 ms above), the newest last
  local st = job:metrics().step
  T.ok(#job.history == math.min(st, 20000) and job.history[#job.history].step == st,
    string.format("the history keeps every report up to 20,000, the newest last: %d rows for step %d", #job.history, st))
  job:pause()
  wb.yield()
  local s1 = job:metrics().step
  wb.sleep(20)
  T.ok(job:status() == "paused" and job:metrics().step == s1, "a paused job does not run: " .. job:status())
  job:resume()
  wb.sleep(20)
  T.ok(job:metrics().step > s1, "a resumed job runs again")
  T.ok(tostring(job):find("job " .. job.id, 1, true) and tostring(job):find("step", 1, true), "tostring(job): " .. tostring(job))
  job:stop()
  wb.yield()
  T.ok(job:status() == "stopped", "a stopped job is stopped: " .. job:status())
  T.fails(function() job:wait() end, "was stopped", "waiting for a stopped job")

  -- stop reaches a job blocked in a long sleep at once, and frees its timer
  local sleepy = wb.run(recipe, { sleepy = true })
  wb.sleep(5)
  T.ok(sleepy:status() == "waiting", "the sleepy job waits: " .. sleepy:status())
  local t0 = wb.now()
  sleepy:stop()
  wb.yield()
  T.ok(sleepy:status() == "stopped" and wb.now() - t0 < 0.5, "stop ends a wait at once")
  -- a job paused before it starts, then stopped, never runs
  local never = wb.run(recipe, {})
  never:pause()
  wb.sleep(5)
  T.ok(never:metrics().step == nil, "a job paused before its first step does not run")
  never:stop()
  wb.yield()
  T.ok(never:status() == "stopped", "a paused job can be stopped: " .. never:status())
  os.remove(recipe)
  T.fails(function() wb.run("/nonexistent/recipe.lua") end, "run: cannot open", "run of a missing file")

  -- a task stopped while its C work runs: the work still finishes, is freed
  local held = held_work()
  local w_task = wb.spawn(function() return wb.await(held) end)
  while C.ewb_work_state(held.h) == C.EWB_WORK_QUEUED do end
  wb.yield()
  T.ok(w_task:status() == "waiting", "the task waits for its running work: " .. w_task:status())
  w_task:stop()
  wb.yield()
  T.ok(w_task:status() == "stopped", "a task waiting on C work stops: " .. w_task:status())
  open_gate()
  wb.await(loop.work_sleep(1)) -- queued behind the orphan: it has finished too
  T.ok(#loop.pending() == 0, "the orphaned work was freed when it ended: " .. table.concat(loop.pending(), "; "))
end

step "Ctrl-C"
-- a Ctrl-C noted while a background task runs goes to the foreground (here
-- the main task, at its wait) and not to the background task
do
  local bg = wb.spawn(function()
    wb.sleep(10)
    C.ewb_loop_note_interrupt() -- what the host's SIGINT handler does
    wb.sleep(10)
    return "bg finished"
  end)
  local t0 = wb.now()
  local ok, err = pcall(wb.sleep, 5000)
  T.ok(not ok and tostring(err):find("interrupted", 1, true), "the foreground's wait raises interrupted: " .. tostring(err))
  T.ok(wb.now() - t0 < 1, "at once")
  T.ok(wb.await(bg) == "bg finished", "the background task goes on")
end

step "lost wake-ups and leaked sources"
-- regressions: a hang seen under load (the scheduler blocked in epoll_wait
-- with a timer's event queued), and work whose completion event was drained
-- before its waiter was stopped left an orphan that kept the loop waiting
do
  local function pending_text() return table.concat(loop.pending(), "; ") end
  -- a timer that comes due while tasks run, before libuv polls again: libuv
  -- 1.44 runs it at the start of uv_run and then polls until the next timer
  -- (the guard, 3 s later; with none, for ever)
  local guard = wb.timer(3000, function() end)
  local function busy(s) local t = wb.now(); while wb.now() - t < s do end end
  wb.spawn(busy, 0.02) -- runs past the sleep's due time
  local t0 = wb.now()
  wb.sleep(5)
  T.ok(wb.now() - t0 < 1, "a sleep that came due while another task ran wakes at once: " .. (wb.now() - t0) .. " s")
  -- the same for a repeating timer's first tick (its next is 5 s away)
  wb.spawn(busy, 0.02)
  t0 = wb.now()
  local first
  local rep = wb.timer(2, 5000, function() first = wb.now() - t0; return false end)
  wb.await(rep.task)
  T.ok(first and first < 1, "a repeating timer's tick that came due while another task ran comes at once: " .. tostring(first))
  guard:stop()
  wb.yield()

  -- work events, forced into each order: the worker pushes w1's event
  -- before it takes w2, so once w2 left the queue w1's event is queued
  local Q = C.EWB_WORK_QUEUED
  local function until_queued_event(w2) while C.ewb_work_state(w2.h) == Q do end end

  -- (a) the event wakes the task, then it is stopped before it runs (the
  -- worker is held on a semaphore until the task waits)
  local g = held_work()
  local w1, w2 = loop.work_sleep(0), loop.work_sleep(0)
  local ta = wb.spawn(function() return wb.await(w1) end)
  wb.yield()
  T.ok(ta:status() == "waiting", "(a) the task waits for its work: " .. ta:status())
  open_gate()
  until_queued_event(w2)
  wb.yield() -- the drain after this task's turn readies ta, behind it
  T.ok(ta:status() == "running", "(a) the task is ready after its work's event: " .. ta:status())
  ta:stop()
  wb.yield() -- ta runs its wait's cancel
  wb.await(w2)
  wb.await(g)
  T.ok(ta:status() == "stopped", "(a) stopped: " .. ta:status())
  T.ok(#loop.pending() == 0, "(a) stopping a task whose work event came leaves nothing pending: " .. pending_text())

  -- (b) the task is stopped while it waits, and the event comes before it
  -- runs its cancel
  g = held_work()
  w1, w2 = loop.work_sleep(0), loop.work_sleep(0)
  local tb = wb.spawn(function() return wb.await(w1) end)
  wb.yield()
  T.ok(tb:status() == "waiting", "(b) the task waits for its work: " .. tb:status())
  open_gate()
  until_queued_event(w2)
  tb:stop()
  wb.yield() -- the drain after this turn gets w1's event, then tb runs its cancel
  wb.await(w2)
  wb.await(g)
  T.ok(tb:status() == "stopped", "(b) stopped: " .. tb:status())
  T.ok(#loop.pending() == 0, "(b) an event that came after the stop leaves nothing pending: " .. pending_text())

  -- (c) outside a task (as typed at the REPL): the work's event and a
  -- Ctrl-C come in the same round; the wait raises interrupted
  w1, w2 = loop.work_sleep(0), loop.work_sleep(0)
  until_queued_event(w2)
  C.ewb_loop_note_interrupt()
  local ok, err = coroutine.wrap(function() return pcall(wb.await, w1) end)()
  T.ok(not ok and tostring(err):find("interrupted", 1, true), "(c) an await outside a task is interrupted: " .. tostring(err))
  wb.await(w2)
  T.ok(#loop.pending() == 0, "(c) an interrupted wait whose event came leaves nothing pending: " .. pending_text())

  -- a timer or work never awaited: its event ends it as a source
  local lone = loop.work_sleep(0)
  wb.await(loop.work_sleep(0))
  T.ok(#loop.pending() == 0, "work nobody awaits ends when its event comes: " .. pending_text())
  T.ok(wb.await(lone) == true, "and can still be awaited")

  -- the safety net: about to block for a source that nothing in C can end
  -- (a lost event), the scheduler raises and names it instead of hanging
  local id = loop._debug_add_source("a lost event")
  local paused = wb.spawn(function() end):pause()
  local ok2, err2 = coroutine.wrap(function() return pcall(wb.await, paused) end)()
  T.ok(not ok2 and tostring(err2):find("waiting for a lost event (event " .. id, 1, true)
    and tostring(err2):find("scheduler bug", 1, true), "blocking for nothing raises: " .. tostring(err2))
  loop._debug_drop_source(id)
  paused:stop()
  wb.yield()
end

step "progress bars"
-- progress bars: plain periodic lines off a terminal, one redrawn line on one
do
  local function capture(o, n, fn)
    local name = os.tmpname()
    local f = io.open(name, "w")
    o.out = f
    local p = wb.progress(o)
    for i = 1, n do
      if fn then fn(i) end
      p:update(i, { loss = 1 / i })
    end
    p:close()
    f:close()
    local text = io.open(name):read("*a")
    os.remove(name)
    return text, p
  end
  local text, p = capture({ total = 50, desc = "train", tty = false, every_s = 1e9 }, 50)
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.ok(#lines == 11, "every 10% a line, and the first one: " .. #lines .. "\n" .. text)
  for _, l in ipairs(lines) do
    T.ok(l:match("^train: %d+/50 %(%d+%%%) [%d.]+ steps/s ETA [%d:?]+ elapsed %d+:%d%d loss [%d.e-]+$"), "line format: " .. l)
  end
  T.ok(lines[#lines]:find("50/50 (100%)", 1, true) and lines[#lines]:find("loss 0.02", 1, true), "last line: " .. lines[#lines])
  T.ok(lines[2]:find("^train: 5/50 %(10%%%)"), "10% line: " .. lines[2])
  T.ok(loop.current():metrics().step == 50 and loop.current():metrics().total == 50, "update reports step and total to the task")
  -- no total: a line every every_s seconds
  local text2 = capture({ desc = "eval", tty = false, every_s = 0.02 }, 5, function() wb.sleep(12) end)
  local n2 = select(2, text2:gsub("\n", ""))
  T.ok(n2 >= 2 and n2 <= 5 and text2:find("^eval: step 1 "), "time-based lines without a total: " .. text2)
  -- a terminal: \r, clear to end of line, and a newline at the end
  local text3 = capture({ total = 10, desc = "tty", tty = true }, 10)
  T.ok(text3:sub(1, 1) == "\r" and text3:find("\27[K", 1, true) and text3:sub(-1) == "\n", "terminal line: " .. text3:gsub("[\r\27]", "^"))
  T.ok(text3:find("[####################] tty: 10/10 (100%)", 1, true) and text3:find("ETA 0:00", 1, true), "full bar: " .. text3)
  T.ok(select(2, text3:gsub("\n", "")) == 1, "only one newline on a terminal")
  T.fails(function() wb.progress { total = 0 } end, "total must be a number > 0", "progress total 0")
  T.fails(function() p:update(51) end, "update after close", "update after close")
end

T.ok(not loop.has_work(), "nothing left pending: every timer and work was released")
ffi.C.sem_destroy(gate)
T.done()
