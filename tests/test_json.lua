-- tests/test_json.lua: lua/ecgwb/json.lua. Exact round trips of numbers
-- (shortest form, integers, extremes, -0), escaping of every control
-- character and of quotes and backslashes, \u escapes and surrogate pairs,
-- nested tables, the NaN/Infinity tokens (and strict mode), Python's json
-- reading our output when python3 is there, and clear errors.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local json = wb.json

-- numbers
T.ok(json.encode(3) == "3" and json.encode(-42) == "-42" and json.encode(0) == "0", "integers")
T.ok(json.encode(0.1) == "0.1" and json.encode(1e-3) == "0.001" and json.encode(2.5e300) == "2.5e+300", "shortest floats: " .. json.encode(2.5e300))
T.ok(json.encode(2 ^ 53) == "9007199254740992" and json.encode(2 ^ 53 - 1) == "9007199254740991", "2^53: " .. json.encode(2 ^ 53))
T.ok(json.encode(-0.0) == "-0" and 1 / json.decode("-0") < 0, "negative zero")
local nums = { 0.1, 1 / 3, -2 / 7, 1e-310, 5e-324, 1.7976931348623157e308, 123456789.123456789, 3.14159, -1e21,
  tonumber(wb.ffi.new("float", 0.1)) }
for _, x in ipairs(nums) do T.ok(json.decode(json.encode(x)) == x, "round trip of " .. string.format("%.17g", x)) end
math.randomseed(3)
local bad = 0
for _ = 1, 2000 do
  local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
  if json.decode(json.encode(x)) ~= x then bad = bad + 1 end
end
T.ok(bad == 0, bad .. " of 2000 random doubles did not round-trip")

-- NaN and infinities: Python's tokens, or an error in strict mode
T.ok(json.encode(0 / 0) == "NaN" and json.encode(math.huge) == "Infinity" and json.encode(-math.huge) == "-Infinity", "non-finite tokens")
local nf = json.decode(json.encode({ a = 0 / 0, b = math.huge, c = -math.huge }))
T.ok(nf.a ~= nf.a and nf.b == math.huge and nf.c == -math.huge, "non-finite round trip")
T.fails(function() json.encode({ loss = 0 / 0 }, { strict = true }) end, "value.loss is nan, which JSON cannot represent")

-- strings
local all = {}
for c = 0, 127 do all[#all + 1] = string.char(c) end
local s = table.concat(all) .. "héllo ∑ 😀"
local enc = json.encode(s)
T.ok(not enc:find("[%c]"), "no raw control characters in the output")
T.ok(enc:find('\\"', 1, true) and enc:find("\\\\", 1, true) and enc:find("\\n", 1, true) and enc:find("\\u0001", 1, true), "escapes")
T.ok(json.decode(enc) == s, "every ASCII character and UTF-8 round trip")
T.ok(json.encode('a"b\\c\n') == '"a\\"b\\\\c\\n"', "quote, backslash, newline")
T.ok(json.decode('"\\u00e9\\u2211\\ud83d\\ude00\\/"') == "é∑😀/", "\\u escapes with a surrogate pair")

-- tables
local v = { step = 3, name = "run", ok = true, off = false, list = { 1, 2, { x = 1 } }, nested = { a = { b = { c = "d" } } }, empty = {} }
local text = json.encode(v)
T.ok(text == '{"empty":{},"list":[1,2,{"x":1}],"name":"run","nested":{"a":{"b":{"c":"d"}}},"off":false,"ok":true,"step":3}', "sorted keys: " .. text)
local back = json.decode(text)
T.ok(back.step == 3 and back.ok == true and back.off == false and back.list[3].x == 1 and back.nested.a.b.c == "d" and next(back.empty) == nil, "nested round trip")
T.ok(json.decode("[1, null, 3]")[2] == json.null and json.encode({ 1, json.null, 3 }) == "[1,null,3]", "null")
T.ok(json.decode(' \n{ "a" : [ ] , "b":[1 ,2] }\t').b[2] == 2, "whitespace")

-- errors
T.fails(function() json.encode({ 1, 2, nil, 4 }) end, "sparse array")
T.fails(function() json.encode({ 1, x = 2 }) end, "mixes string and non-string keys")
local cyc = {}
cyc.self = cyc
T.fails(function() json.encode(cyc) end, "value.self contains itself")
T.fails(function() json.encode({ t = wb.zeros(2) }) end, "value.t is a cdata")
T.fails(function() json.decode('{"a":1,}') end, "expected a string key at byte 8")
T.fails(function() json.decode('[1 2]') end, "expected ',' or ']'")
T.fails(function() json.decode('"abc') end, "unterminated string")
T.fails(function() json.decode('"a\nb"') end, "control character in string")
T.fails(function() json.decode('{"a":1} x') end, "trailing characters")
T.fails(function() json.decode('') end, "unexpected end of input")
T.fails(function() json.decode('01') end, "bad number")
T.fails(function() json.decode('"\\ud800"') end, "unpaired surrogate")
T.fails(function() json.decode(string.rep("[", 600)) end, "nesting deeper than 500")

-- Python's json reads our output (NaN included) and we read Python's
local py = io.open("/usr/bin/python3") and "/usr/bin/python3"
if py then
  local tmp = os.tmpname()
  local f = io.open(tmp, "w")
  f:write(json.encode({ x = 0.1, s = s, n = 0 / 0, l = { 1, 2.5 } }))
  f:close()
  local p = io.popen(py .. [[ -c "
import json,sys,math
d = json.load(open(sys.argv[1]))
assert d['x'] == 0.1 and math.isnan(d['n']) and d['l'] == [1, 2.5] and len(d['s']) == 128 + 9, d
print(json.dumps({'u': 'é\u2211\n', 'f': 1/3, 'i': 2**40}))
" ]] .. tmp)
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  local d = out ~= "" and json.decode(out)
  T.ok(d and d.u == "é∑\n" and d.f == 1 / 3 and d.i == 2 ^ 40, "Python's json and ours agree: " .. out)
else
  print("note: /usr/bin/python3 not found, Python interop not checked")
end

T.done()
