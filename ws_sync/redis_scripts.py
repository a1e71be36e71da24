"""The Lua scripts of the Redis backplane: each is one atomic step in Redis."""

CREATE = """
local ttl = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) redis.call('PEXPIRE', KEYS[2], ttl) end
  return 0
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'v', ARGV[3], 'state', ARGV[2], 'state_v', ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

RESEED = """
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'v', ARGV[3], 'state', ARGV[2], 'state_v', ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

COMMIT = """
local h = redis.call('HMGET', KEYS[1], 'v', 'epoch')
if not h[1] or h[2] ~= ARGV[5] then return {-3, 0} end
local v = tonumber(h[1])
if v ~= tonumber(ARGV[1]) then return {-1, v} end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[4] then return {-2, v} end
v = v + 1
if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[2], v .. '-0', 'f', ARGV[2], 'o', ARGV[3], 'c', ARGV[8])
else
  redis.call('XADD', KEYS[2], v .. '-0', 'f', ARGV[2], 'o', ARGV[3])
end
redis.call('HSET', KEYS[1], 'v', v)
if holder then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return {1, v}
"""

SNAPSHOT = """
local h = redis.call('HMGET', KEYS[1], 'state_v', 'epoch')
if not h[1] or h[2] ~= ARGV[3] or tonumber(h[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'state_v', ARGV[1])
local low = tonumber(ARGV[1]) - tonumber(ARGV[4])
if low > 1 then redis.call('XTRIM', KEYS[2], 'MINID', low .. '-0') end
return 1
"""

MIGRATE = """
local h = redis.call('HMGET', KEYS[1], 'epoch', 'v')
if h[1] ~= ARGV[1] or tonumber(h[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[4], 'state', ARGV[3], 'state_v', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""

LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local worker = string.match(holder, '^[^:]*')
  if redis.call('EXISTS', ARGV[3] .. worker) == 1 then
    if ARGV[5] == '1' or redis.call('GET', KEYS[3]) ~= ARGV[1] then
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'w', ARGV[1])
    end
    redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
    return {-2, 0}
  end
end
local v = redis.call('HGET', KEYS[2], 'v')
if not v then return {-1, 0} end
if holder and holder ~= ARGV[1] then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'x', holder)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local want = redis.call('GET', KEYS[3])
if want == ARGV[1] then redis.call('DEL', KEYS[3]) want = false end
if want then return {tonumber(v), 1} end
return {tonumber(v), 0}
"""

HANDOFF = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'x', ARGV[1])
  return 0
end
local want = redis.call('GET', KEYS[3])
if want and want ~= ARGV[1] then
  redis.call('DEL', KEYS[3])
  redis.call('SET', KEYS[1], want, 'PX', ARGV[2])
  local v = redis.call('HGET', KEYS[2], 'v') or 0
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'g', want, 'v', v)
  return 2
end
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'x', ARGV[1])
return 1
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

KEEP = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
  redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2]))
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""
