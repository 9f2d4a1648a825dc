-- Fixed-window quotas of one subject, spent all together or not at all, and
-- refunded. Used by Limiter.Spend and Limiter.Refund (quota.go documents
-- them).
--
-- KEYS[i], i <= n  q:{<hashed subject>}:<quota i>   hash: w = window index,
--                  c = units spent in that window
-- KEYS[n+1]        q:{<hashed subject>}:d:<decision id>   the decision's
--                  marker: present while its units may still be refunded
-- ARGV[1]          "spend" or "refund"
-- ARGV[2]          the marker's lifetime (ms)
-- spend:  ARGV[3i], [3i+1], [3i+2]  cost, limit, window (microseconds)
-- refund: ARGV[3i], [3i+1], [3i+2]  cost, window index, unused (0); a
--                  quota whose cost is 0 is left alone
--
-- Time is Redis TIME in microseconds. Window k of a quota is
-- [k * window, (k + 1) * window): windows are aligned to the Unix epoch, so
-- a one-day quota resets at 00:00 UTC. Counts are written with %d: Redis
-- would print a Lua number with %.14g.
--
-- spend reply: {allowed, time, then per quota: remaining, reset, index},
-- remaining counted after this decision, reset the end of the window
-- (microseconds). A decision whose marker exists is a replay (go-redis
-- re-sent the script after a network error): it is answered as admitted
-- and nothing is added.
-- refund reply: 1 when refunded, 0 when the marker was gone (already
-- refunded, or expired).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS - 1
local marker = KEYS[n + 1]

if ARGV[1] == 'refund' then
  if redis.call('DEL', marker) == 0 then
    return 0
  end
  for i = 1, n do
    local cost = tonumber(ARGV[3 * i])
    local idx = ARGV[3 * i + 1]
    if cost > 0 and redis.call('HGET', KEYS[i], 'w') == idx then
      local c = tonumber(redis.call('HGET', KEYS[i], 'c')) or 0
      c = c - cost
      if c < 0 then
        c = 0
      end
      redis.call('HSET', KEYS[i], 'c', string.format('%d', c))
    end
  end
  return 1
end

local replay = redis.call('EXISTS', marker) == 1
local allowed = 1
local idx, counts, resets = {}, {}, {}
for i = 1, n do
  local cost = tonumber(ARGV[3 * i])
  local limit = tonumber(ARGV[3 * i + 1])
  local window = tonumber(ARGV[3 * i + 2])
  local k = math.floor(now / window)
  local v = redis.call('HMGET', KEYS[i], 'w', 'c')
  local c = 0
  if v[1] == string.format('%d', k) then
    c = tonumber(v[2]) or 0
  end
  idx[i], counts[i], resets[i] = k, c, (k + 1) * window
  if not replay and c + cost > limit then
    allowed = 0
  end
end

if allowed == 1 and not replay then
  for i = 1, n do
    local cost = tonumber(ARGV[3 * i])
    counts[i] = counts[i] + cost
    redis.call('HSET', KEYS[i], 'w', string.format('%d', idx[i]), 'c', string.format('%d', counts[i]))
    -- Kept one second past its window, then forgotten.
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.floor((resets[i] - now) / 1000) + 1000))
  end
  redis.call('SET', marker, '1', 'PX', ARGV[2])
end

local reply = {allowed, now}
for i = 1, n do
  local limit = tonumber(ARGV[3 * i + 1])
  local remaining = limit - counts[i]
  if remaining < 0 then
    remaining = 0
  end
  reply[3 * i] = remaining
  reply[3 * i + 1] = resets[i]
  reply[3 * i + 2] = idx[i]
end
return reply
