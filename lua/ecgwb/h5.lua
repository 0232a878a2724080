--[[ ecgwb.h5: tensors in HDF5 files (core/h5.c does the work).

  wb.h5.save("ckpt.h5", { ["enc/weight"] = w, step = wb.tensor(3, "i64") })  -- new file
  local all = wb.h5.load("ckpt.h5")          -- { ["enc/weight"] = tensor, step = tensor }
  wb.h5.write("ckpt.h5", "extra/x", x)       -- adds or replaces one dataset
  local x = wb.h5.read("ckpt.h5", "extra/x")
  for _, name in ipairs(wb.h5.list("ckpt.h5")) do print(name) end

Dataset names are slash paths; groups are created as needed. f32, i32, i64
and bool tensors round-trip; f64 datasets read as f32 and other integer
widths as i64.

wb.save_state_dict(file, sd) / wb.load_state_dict(file) store a state dict
(PyTorch names such as "layers.0.self_attn.in_proj_weight") as flat datasets
of one file, so a checkpoint written by h5py from a PyTorch state_dict loads
directly.
]]
local T = require "ecgwb.tensor"
local ffi, C = T.ffi, T.C
local check, wrap, out1 = T.check, T.wrap, T._internal.out1

local M = {}

local function need_string(v, what, fn)
  if type(v) ~= "string" then error(fn .. ": " .. what .. " must be a string, got " .. type(v), 3) end
end

function M.write(file, name, t)
  need_string(file, "file", "h5.write"); need_string(name, "name", "h5.write")
  if not T.is_tensor(t) then error("h5.write: '" .. name .. "' is not a tensor (" .. type(t) .. ")", 2) end
  check(C.ewb_h5_write(file, name, t.ptr, 0))
end

function M.read(file, name)
  need_string(file, "file", "h5.read"); need_string(name, "name", "h5.read")
  check(C.ewb_h5_read(file, name, out1))
  return wrap(out1[0])
end

-- all dataset paths of the file, sorted
function M.list(file)
  need_string(file, "file", "h5.list")
  local n = 4096
  while true do
    local buf = ffi.new("char[?]", n)
    if C.ewb_h5_list(file, buf, n) == 0 then
      local names = {}
      for line in ffi.string(buf):gmatch("[^\n]+") do names[#names + 1] = line end
      return names
    end
    local msg = ffi.string(C.ewb_last_error())
    local need = tonumber(msg:match("need (%d+) bytes"))
    if not need then error(msg, 2) end
    n = need
  end
end

-- a new file holding every tensor of tbl (name -> tensor), in sorted order
function M.save(file, tbl)
  need_string(file, "file", "h5.save")
  if type(tbl) ~= "table" then error("h5.save: expected a table of tensors, got " .. type(tbl), 2) end
  local names = {}
  for k, v in pairs(tbl) do
    if type(k) ~= "string" then error("h5.save: keys must be strings, got " .. type(k), 2) end
    if not T.is_tensor(v) then error("h5.save: '" .. k .. "' is not a tensor (" .. type(v) .. ")", 2) end
    names[#names + 1] = k
  end
  if #names == 0 then error("h5.save: nothing to save to '" .. file .. "' (empty table)", 2) end
  table.sort(names)
  check(C.ewb_h5_write(file, names[1], tbl[names[1]].ptr, 1)) -- a new file
  for i = 2, #names do check(C.ewb_h5_write(file, names[i], tbl[names[i]].ptr, 0)) end
end

function M.load(file)
  local out = {}
  for _, name in ipairs(M.list(file)) do out[name] = M.read(file, name) end
  return out
end

-- state dicts: flat names with dots stay as they are (one dataset each)
function M.save_state_dict(file, sd)
  if type(sd) ~= "table" then error("save_state_dict: expected a table name -> tensor, got " .. type(sd), 2) end
  local copy = {}
  for k, v in pairs(sd) do copy[k] = T.is_tensor(v) and v:detach() or v end
  M.save(file, copy)
end
M.load_state_dict = M.load

return M
