-- make(hi, lo, signed) builds a 64-bit cdata from two 32-bit halves; kind(v) says 1 for
-- int64_t, 2 for uint64_t, 0 otherwise. The C API cannot create cdata itself.
local ffi = require("ffi")
local u64, i64, istype = ffi.typeof("uint64_t"), ffi.typeof("int64_t"), ffi.istype
local function make(hi, lo, signed)
  local v = u64(hi) * 4294967296ULL + lo
  if signed then return i64(v) end
  return v
end
local function kind(v)
  if istype(i64, v) then return 1 end
  if istype(u64, v) then return 2 end
  return 0
end
return { make, kind }
