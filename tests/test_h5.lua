-- tests/test_h5.lua: lua/ecgwb/h5.lua (wb.h5.save/load/read/write/list and
-- wb.save_state_dict/load_state_dict): round trips, listing, errors as Lua errors.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")

local file = os.tmpname() -- an empty file, replaced by the first save

local function same(a, b, msg)
  T.ok(a:type() == b:type(), msg .. ": dtype " .. a:type() .. " vs " .. b:type())
  T.ok(table.concat(a:size(), ",") == table.concat(b:size(), ","), msg .. ": shape")
  local x, y = a:totable(), b:totable()
  local eq = #x == #y
  for i = 1, #x do eq = eq and x[i] == y[i] end
  T.ok(eq, msg .. ": values")
end

wb.manual_seed(3)
local tbl = {
  w = wb.randn(3, 4),
  ["enc/layers.0/bias"] = wb.randn(4),
  ids = wb.tensor({ { 1, -2, 3 }, { 4, 5, 6 } }, "i64"),
  small = wb.tensor({ 7, 8 }, "i32"),
  mask = wb.tensor({ true, false, true }, "bool"),
  scalar = wb.tensor(2.5),
  empty = wb.zeros(0, 3),
}
wb.h5.save(file, tbl)
local names = wb.h5.list(file)
T.ok(table.concat(names, " ") == "empty enc/layers.0/bias ids mask scalar small w", "list: " .. table.concat(names, " "))
local back = wb.h5.load(file)
for k, v in pairs(tbl) do
  T.ok(back[k] ~= nil, "load has " .. k)
  if back[k] then same(back[k], v, k) end
end
T.ok(back.scalar:dim() == 0 and back.scalar:item() == 2.5, "0-d scalar")

-- write adds or replaces one dataset; read gets one
local x = wb.randn(2, 5):t() -- a strided view
wb.h5.write(file, "extra/x", x)
same(wb.h5.read(file, "extra/x"), x:contiguous(), "strided write")
wb.h5.write(file, "w", wb.ones(2))
same(wb.h5.read(file, "w"), wb.ones(2), "replaced")
T.ok(#wb.h5.list(file) == 8, "8 datasets after write")

-- a listing longer than the first buffer
local many = {}
for i = 1, 300 do many[string.format("group_number_%03d/dataset_with_a_long_name_%03d", i, i)] = wb.tensor(i) end
wb.h5.save(file, many)
local l = wb.h5.list(file)
T.ok(#l == 300 and l[300] == "group_number_300/dataset_with_a_long_name_300", "long listing: " .. #l)
T.ok(wb.h5.read(file, l[17]):item() == 17, "value in long listing")

-- state dicts, with gradients attached and PyTorch names
local p = wb.randn(4, 4):requires_grad_()
wb.save_state_dict(file, { ["layers.0.self_attn.in_proj_weight"] = p, ["layers.0.norm1.bias"] = wb.zeros(4) })
local sd = wb.load_state_dict(file)
same(sd["layers.0.self_attn.in_proj_weight"], p:detach(), "state dict")
T.ok(not sd["layers.0.self_attn.in_proj_weight"].requires_grad, "loaded tensors do not require grad")

-- errors
T.fails(function() wb.h5.read(file, "nope") end, "has no dataset 'nope'")
T.fails(function() wb.h5.read("/nonexistent/f.h5", "x") end, "cannot open '/nonexistent/f.h5'")
T.fails(function() wb.h5.list("/nonexistent/f.h5") end, "/nonexistent/f.h5")
T.fails(function() wb.h5.save(file, { a = 1 }) end, "'a' is not a tensor")
T.fails(function() wb.h5.save(file, {}) end, "nothing to save")
T.fails(function() wb.h5.write(file, "a", "text") end, "not a tensor")
T.fails(function() wb.h5.read(file) end, "name must be a string")
local txt = file .. ".txt"
local f = io.open(txt, "w"); f:write("not hdf5\n"); f:close()
T.fails(function() wb.load_state_dict(txt) end, "is not an HDF5 file")

os.remove(file)
os.remove(txt)
T.done()
