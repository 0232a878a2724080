-- tests/test_jsonl.lua: lua/ecgwb/jsonl.lua. One JSON object per line, on disk
-- as soon as :write returns (read back before :close); append mode; a
-- partial last line (a killed writer) is dropped or reported; clear errors.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")

local path = os.tmpname()
local log = wb.jsonl.open(path)
log:write { step = 1, loss = 0.5, lr = 1e-3, tag = 'a "quoted"\nline' }
log:write { step = 2, loss = 0 / 0, extra = { acc = 0.75, per_class = { 0.5, 1 } } }
-- flushed: another reader sees both lines before close
local f = io.open(path)
local text = f:read("*a")
f:close()
local lines = {}
for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
T.ok(#lines == 2 and text:sub(-1) == "\n", "two complete lines on disk before close")
T.ok(lines[1] == '{"loss":0.5,"lr":0.001,"step":1,"tag":"a \\"quoted\\"\\nline"}', "line 1: " .. tostring(lines[1]))
T.ok(lines[2] == '{"extra":{"acc":0.75,"per_class":[0.5,1]},"loss":NaN,"step":2}', "line 2: " .. tostring(lines[2]))
log:close()
T.fails(function() log:write { step = 3 } end, "is closed")

local recs = wb.jsonl.read(path)
T.ok(#recs == 2 and recs[1].tag == 'a "quoted"\nline' and recs[2].loss ~= recs[2].loss and recs[2].extra.per_class[2] == 1, "read back")

-- append, then a partial line as a killed writer leaves it
log = wb.jsonl.open(path, { append = true })
log:write { step = 3, loss = 0.25 }
log:close()
f = io.open(path, "a")
f:write('{"step":4,"lo')
f:close()
recs = wb.jsonl.read(path)
T.ok(#recs == 3 and recs[3].step == 3, "append keeps the old records; the partial last line is dropped")
T.fails(function() wb.jsonl.read(path, { strict = true }) end, ":4: json.decode")
-- a broken line in the middle is an error even when not strict
f = io.open(path, "w")
f:write('{"step":1}\nnot json\n{"step":3}\n')
f:close()
T.fails(function() wb.jsonl.read(path) end, ":2: json.decode: unexpected character")

-- truncating open
log = wb.jsonl.open(path)
log:write { step = 9 }
log:close()
recs = wb.jsonl.read(path)
T.ok(#recs == 1 and recs[1].step == 9, "open truncates by default")

-- errors
T.fails(function() wb.jsonl.open("/no/such/dir/x.jsonl") end, "jsonl.open: cannot open '/no/such/dir/x.jsonl'")
log = wb.jsonl.open(path)
T.fails(function() log:write(3) end, "expected a table")
T.fails(function() log:write { 1, 2 } end, "expected a record with string keys")
T.fails(function() log:write { f = print } end, "log:write: json.encode: value.f is a function")
log:close()
os.remove(path)

-- wb.log stays the elementwise log
T.close(wb.log(wb.tensor({ 1, math.exp(2) })), wb.tensor({ 0, 2 }), 1e-6, "wb.log(x)")

T.done()
