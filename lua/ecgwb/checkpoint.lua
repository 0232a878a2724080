--[[ ecgwb.checkpoint: save and resume a training run (core/checkpoint.c).

  wb.checkpoint.save("runs/x/ckpt.h5", { model = model, optimizer = opt, step = step,
                                         loader = { pos = pos, epoch = epoch }, config = cfg })
  local r = wb.checkpoint.load("runs/x/ckpt.h5", { model = model, optimizer = opt })
  -- r.step, r.loader, r.config; the model, the optimiser and the RNG are restored

A checkpoint is one HDF5 file:
  /model/<state_dict name>     parameters and buffers
  /optim/<param name>/<key>    optimiser state tensors (exp_avg, exp_avg_sq, momentum_buffer)
  /rng                         i64[2]: the Philox seed and offset (as u64 bits)
  /extra/<name>                any other tensors (state.extra, e.g. EMA weights)
  attribute meta               JSON: step, loader, optimiser name, config, param
                               order and per-param numbers (AdamW's step), ecgwb version
  attribute config             JSON: the run's config table
  attributes format, checksum  (core/checkpoint.c)
Writing is atomic (FILE.tmp, fsync, rename) and loading verifies a CRC-32,
so a damaged or half-written file gives an error, never wrong weights.

Optimiser state is stored by parameter name (the model's state_dict name of
each of opt:parameters()), so it survives a change of parameter order. The
optimiser must be an object from wb.optim (AdamW, SGD): it has .state,
.config, .groups and :parameters().

Loading restores the RNG too (opts.rng = false skips that), so dropout
masks and randperm draws after a resume are the ones the run would have
drawn: resuming is bit-identical at a fixed thread count
(tests/test_checkpoint.lua checks it across processes).

Resuming a recipe (the --resume flag):
  local run = wb.checkpoint.resume_or_start { path = cfg.ckpt, model = model, optimizer = opt, config = cfg }
  for step = run.step + 1, cfg.steps do
    ... train ...
    if step % cfg.ckpt_every == 0 then
      wb.checkpoint.save(cfg.ckpt, { model = model, optimizer = opt, step = step, loader = ..., config = cfg })
    end
  end
`ecgwb recipe.lua --resume` continues from cfg.ckpt (an error if it is
missing), `--resume=PATH` from PATH, and without the flag the run starts
fresh. opts.resume = true / false / "auto" (resume if the file exists)
overrides the command line.

For a write off the loop thread (the event loop): M.prepare(state, true)
snapshots every tensor into a C-owned bag on the calling thread; C's
ewb_ckpt_write(bag, path) then needs no Lua and may run on a worker.
]]
local wb = require "ecgwb"
local json = require "ecgwb.json"
local ffi, C = wb.ffi, wb.C

local M = {}

local function check(rc, fn)
  if rc ~= 0 then error(fn .. ": " .. ffi.string(C.ewb_last_error()), 3) end
end

-- parameter address -> model state_dict name
local function param_names(model)
  local names = {}
  for _, np in ipairs(model:named_parameters()) do
    names[tonumber(ffi.cast("intptr_t", np[2].ptr))] = np[1]
  end
  return names
end
local function name_of(names, p) return names[tonumber(ffi.cast("intptr_t", p.ptr))] end

local function is_optimizer(o)
  return type(o) == "table" and type(o.state) == "table" and type(o.parameters) == "function" and type(o.config) == "table"
end

-- a copy of a table keeping only what JSON holds (numbers, strings, booleans, tables)
local function plain(t)
  local out = {}
  for k, v in pairs(t) do
    local tv = type(v)
    if tv == "table" then
      if k ~= "params" then out[k] = plain(v) end
    elseif tv == "number" or tv == "string" or tv == "boolean" then
      out[k] = v
    end
  end
  return out
end

local function rng_tensor()
  local seed, off = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
  C.ewb_rng_get_state(seed, off)
  local t = wb.zeros(2):to("i64")
  local p = ffi.cast("int64_t*", t:data_ptr())
  p[0], p[1] = ffi.cast("int64_t", seed[0]), ffi.cast("int64_t", off[0])
  return t
end

-- the C bag holding everything of state; copy: snapshot the tensors (for a
-- write on another thread), else keep references. Returns an ewb_ckpt* that
-- the GC frees (or call M.free(bag)).
function M.prepare(state, copy)
  local fn = "checkpoint.save"
  if type(state) ~= "table" then error(fn .. ": expected a table {model=, optimizer=, step=, loader=, config=}", 2) end
  local model, opt = state.model, state.optimizer
  if state.step ~= nil and type(state.step) ~= "number" then error(fn .. ": step must be a number", 2) end
  if state.loader ~= nil and type(state.loader) ~= "table" then error(fn .. ": loader must be a table", 2) end
  if state.config ~= nil and type(state.config) ~= "table" then error(fn .. ": config must be a table", 2) end
  if opt ~= nil and not is_optimizer(opt) then error(fn .. ": optimizer must be a wb.optim object (AdamW, SGD)", 2) end
  if opt ~= nil and model == nil then error(fn .. ": saving an optimizer needs the model too (state is stored by parameter name)", 2) end

  local out = ffi.new("ewb_ckpt*[1]")
  check(C.ewb_ckpt_new(out), fn)
  local bag = ffi.gc(out[0], C.ewb_ckpt_free)
  local cp = copy and 1 or 0
  local function add(name, t) check(C.ewb_ckpt_add(bag, name, t.ptr, cp), fn) end

  local meta = { step = state.step, loader = state.loader, version = ffi.string(C.ewb_version()) }
  if model then
    for name, t in pairs(model:state_dict()) do add("model/" .. name, t) end
  end
  if opt then
    local names = param_names(model)
    local order, numbers = {}, {}
    for i, p in ipairs(opt:parameters()) do
      local name = name_of(names, p)
      if not name then error(fn .. ": optimizer parameter " .. i .. " is not a parameter of the model", 2) end
      order[i] = name
      local st = opt.state[i]
      if st then
        for k, v in pairs(st) do
          if wb.is_tensor(v) then
            add("optim/" .. name .. "/" .. k, v)
          elseif type(v) == "number" or type(v) == "boolean" then
            numbers[name] = numbers[name] or {}
            numbers[name][k] = v
          else
            error(fn .. ": optimizer state '" .. tostring(k) .. "' of " .. name .. " is a " .. type(v), 2)
          end
        end
      end
    end
    local groups = {}
    for gi, g in ipairs(opt.groups) do groups[gi] = plain(g) end
    meta.optimizer = { name = opt.name, config = plain(opt.config), groups = groups, params = order, numbers = numbers }
  end
  add("rng", rng_tensor())
  for name, t in pairs(state.extra or {}) do
    if not wb.is_tensor(t) then error(fn .. ": extra '" .. tostring(name) .. "' is not a tensor", 2) end
    add("extra/" .. name, t)
  end
  local ok, text = pcall(json.encode, meta)
  if not ok then error(fn .. ": " .. text, 2) end
  check(C.ewb_ckpt_set_attr(bag, "meta", text), fn)
  ok, text = pcall(json.encode, state.config or {})
  if not ok then error(fn .. ": config: " .. text, 2) end
  check(C.ewb_ckpt_set_attr(bag, "config", text), fn)
  return bag
end

function M.free(bag)
  ffi.gc(bag, nil)
  C.ewb_ckpt_free(bag)
end

-- writes state to path atomically (see the top of this file)
function M.save(path, state)
  if type(path) ~= "string" then error("checkpoint.save: path must be a string, got " .. type(path), 2) end
  local bag = M.prepare(state, false)
  local rc = C.ewb_ckpt_write(bag, path)
  M.free(bag)
  check(rc, "checkpoint.save")
end

-- the same write as slow C work on the loop's worker: the state is copied
-- now (training may go on), the file is written in the background.
--   wb.await(wb.checkpoint.save_async(path, state))
function M.save_async(path, state)
  if type(path) ~= "string" then error("checkpoint.save_async: path must be a string, got " .. type(path), 2) end
  if #path >= 4096 then error("checkpoint.save_async: path longer than 4095 bytes", 2) end
  local bag = M.prepare(state, true)
  local job = ffi.new("ewb_ckpt_job")
  job.ck = bag
  ffi.copy(job.path, path)
  -- the work keeps the job and the bag alive until it is freed
  return wb.loop.submit { kind = "call", fn = C.ewb_ckpt_write_job, arg = job, keep = { job, bag } }
end

-- everything in the file, checksum verified: {tensors = {name -> tensor}, meta =, config =}
function M.read(path)
  if type(path) ~= "string" then error("checkpoint.read: path must be a string, got " .. type(path), 2) end
  local out = ffi.new("ewb_ckpt*[1]")
  check(C.ewb_ckpt_read(path, out), "checkpoint.load")
  local bag = out[0]
  local tensors, t1 = {}, ffi.new("ewb_tensor*[1]")
  for i = 0, C.ewb_ckpt_count(bag) - 1 do
    C.ewb_ckpt_tensor(bag, i, t1)
    tensors[ffi.string(C.ewb_ckpt_name(bag, i))] = wb._internal.wrap(t1[0])
  end
  local meta, config = C.ewb_ckpt_attr(bag, "meta"), C.ewb_ckpt_attr(bag, "config")
  meta = meta ~= nil and ffi.string(meta) or nil
  config = config ~= nil and ffi.string(config) or nil
  C.ewb_ckpt_free(bag)
  if not meta or not config then error("checkpoint.load: '" .. path .. "' has no meta/config attributes (not written by wb.checkpoint.save)", 2) end
  local ok1, m = pcall(json.decode, meta)
  local ok2, c = pcall(json.decode, config)
  if not (ok1 and ok2) then error("checkpoint.load: '" .. path .. "': " .. (ok1 and c or m), 2) end
  return { tensors = tensors, meta = m, config = c }
end

-- true, or false and the reason
function M.verify(path)
  if C.ewb_ckpt_verify(path) == 0 then return true end
  return false, ffi.string(C.ewb_last_error())
end

local function restore_optimizer(fn, opt, model, saved, tensors)
  if not saved then error(fn .. ": the checkpoint has no optimizer state", 3) end
  if saved.name ~= opt.name then error(fn .. ": the checkpoint holds " .. tostring(saved.name) .. " state, the optimizer is " .. tostring(opt.name), 3) end
  if #saved.groups ~= #opt.groups then
    error(string.format("%s: the checkpoint's optimizer has %d param groups, this one %d", fn, #saved.groups, #opt.groups), 3)
  end
  local names = param_names(model)
  local params = opt:parameters()
  local state, used = {}, {}
  for i, p in ipairs(params) do
    local name = name_of(names, p)
    if not name then error(fn .. ": optimizer parameter " .. i .. " is not a parameter of the model", 3) end
    used[name] = true
    local prefix, st = "optim/" .. name .. "/", nil
    for k, t in pairs(tensors) do
      if k:sub(1, #prefix) == prefix then
        local key = k:sub(#prefix + 1)
        if table.concat(t:size(), ",") ~= table.concat(p:size(), ",") then
          error(string.format("%s: optimizer state %s has shape [%s], the parameter [%s]", fn, k,
            table.concat(t:size(), ", "), table.concat(p:size(), ", ")), 3)
        end
        st = st or {}
        st[key] = t
      end
    end
    for k, v in pairs(saved.numbers[name] or {}) do
      st = st or {}
      st[k] = v
    end
    state[i] = st
  end
  for _, name in ipairs(saved.params) do
    if not used[name] then error(fn .. ": the checkpoint has optimizer state for '" .. name .. "', which this optimizer does not train", 3) end
  end
  for k in pairs(opt.state) do opt.state[k] = nil end
  for i = 1, #params do opt.state[i] = state[i] end
  for k, v in pairs(saved.config) do opt.config[k] = v end
  for gi, g in ipairs(saved.groups) do
    for k, v in pairs(g) do opt.groups[gi][k] = v end
  end
end

-- restores what targets name ({model=, optimizer=, rng = true, strict = true})
-- from path; returns {step=, loader=, config=, extra=, meta=}
function M.load(path, targets)
  local fn = "checkpoint.load"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  targets = targets or {}
  if targets.optimizer ~= nil and not is_optimizer(targets.optimizer) then error(fn .. ": optimizer must be a wb.optim object", 2) end
  if targets.optimizer ~= nil and targets.model == nil then error(fn .. ": loading an optimizer needs the model too", 2) end
  local ck = M.read(path)
  local t = ck.tensors
  if targets.model then
    local sd, any = {}, false
    for k, v in pairs(t) do
      if k:sub(1, 6) == "model/" then sd[k:sub(7)] = v; any = true end
    end
    if not any then error(fn .. ": '" .. path .. "' holds no model", 2) end
    local ok, err = pcall(targets.model.load_state_dict, targets.model, sd, targets.strict ~= false)
    if not ok then error(fn .. ": '" .. path .. "': " .. tostring(err), 2) end
  end
  if targets.optimizer then restore_optimizer(fn, targets.optimizer, targets.model, ck.meta.optimizer, t) end
  if targets.rng ~= false then
    local r = t.rng
    if not r or r:type() ~= "i64" or r:numel() ~= 2 then error(fn .. ": '" .. path .. "' has no rng state", 2) end
    local p = ffi.cast("int64_t*", r:data_ptr())
    C.ewb_rng_set_state(ffi.cast("uint64_t", p[0]), ffi.cast("uint64_t", p[1]))
  end
  local extra = {}
  for k, v in pairs(t) do
    if k:sub(1, 6) == "extra/" then extra[k:sub(7)] = v end
  end
  return { step = ck.meta.step, loader = ck.meta.loader, config = ck.config, extra = extra, meta = ck.meta }
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- the --resume flag of the command line (global arg): nil, true, or a path
local function resume_flag()
  for _, a in ipairs(rawget(_G, "arg") or {}) do
    if a == "--resume" then return true end
    local p = type(a) == "string" and a:match("^%-%-resume=(.+)$")
    if p then return p end
  end
  return nil
end

-- resumes from opts.path when asked to (see the top of this file), else starts
-- fresh. Returns {step = last completed step (0 when fresh), loader =, config =
-- (the saved config), extra =, resumed = bool, path =}.
function M.resume_or_start(opts)
  local fn = "checkpoint.resume_or_start"
  if type(opts) ~= "table" then error(fn .. ": expected a table {path=, model=, optimizer=, config=}", 2) end
  local path, resume = opts.path, opts.resume
  if resume == nil then
    local flag = resume_flag()
    if type(flag) == "string" then path, resume = flag, true else resume = flag or false end
  end
  if type(path) ~= "string" then error(fn .. ": path must be a string", 2) end
  if not resume or (resume == "auto" and not file_exists(path)) then
    return { step = 0, resumed = false, path = path }
  end
  if not file_exists(path) then error(fn .. ": --resume given, but there is no checkpoint at '" .. path .. "'", 2) end
  local r = M.load(path, { model = opts.model, optimizer = opts.optimizer, rng = opts.rng, strict = opts.strict })
  if opts.config then -- a changed config is allowed (e.g. more steps), but said
    local now = json.decode(json.encode(opts.config))
    local keys = {}
    for k, v in pairs(now) do
      if json.encode(v) ~= json.encode(r.config[k]) then keys[#keys + 1] = k end
    end
    for k in pairs(r.config) do
      if now[k] == nil then keys[#keys + 1] = k end
    end
    table.sort(keys)
    if #keys > 0 then
      io.stderr:write(fn .. ": note: the config differs from the checkpoint's in: " .. table.concat(keys, ", ") .. "\n")
    end
  end
  r.step = r.step or 0
  r.resumed, r.path = true, path
  return r
end

return M
