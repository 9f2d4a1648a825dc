-- Sliding-window log decision for one subject under one or more policies,
-- all admitted or none. Used by Limiter.AllowN (limiter.go documents it).
--
-- KEYS[i]          rl:{<hashed subject>}:<policy i>  (one hash tag: one slot)
-- ARGV[1]          cost, the number of units asked for (>= 1)
-- ARGV[2i], [2i+1] limit and window (microseconds) of policy i
-- ARGV[2n+2 ...]   the members to store, one per unit: strings made by the
--                  caller. Never build a member from a Lua number: Redis's
--                  Lua prints numbers with %.14g, which rounds a timestamp.
--                  Only the first member is sent when the cost exceeds a
--                  limit (nothing will be stored then).
--
-- Time is Redis TIME in microseconds; a unit stored at s is inside the
-- window at t while s > t - window. Scores are exact integers (< 2^53) and
-- reach redis.call as numbers, which Redis converts without loss.
--
-- Reply: {allowed, time, then per policy: remaining, retry, reset}, all
-- integers; time, retry and reset in microseconds. retry is -1 for never
-- (cost above the limit) and 0 when the policy admits; reset is when the
-- oldest counted unit leaves the window (time itself when none is counted).
--
-- Idempotency: a request whose first member is already stored is a replay
-- (go-redis re-sent the script after a network error). It is answered as
-- admitted at the stored time and nothing is added. On the admitting path
-- ZADD NX detects it for free; on the refusing path ZSCORE does.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- retry_after returns how long until cost units fit under limit in a key
-- holding c counted units of which the oldest is at oldest.
local function retry_after(key, c, cost, limit, window, oldest)
  if cost > limit then
    return -1
  end
  -- The (c + cost - limit)-th oldest unit must leave the window first.
  local need = c + cost - limit
  local s = oldest
  if need > 1 then
    s = tonumber(redis.call('ZRANGE', key, need - 1, need - 1, 'WITHSCORES')[2])
  end
  return s + window - now
end

if #KEYS == 1 and ARGV[1] == '1' then
  -- One policy, one unit: the common case, in straight lines.
  local key = KEYS[1]
  local limit = tonumber(ARGV[2])
  local window = tonumber(ARGV[3])
  local member = ARGV[4]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local c = redis.call('ZCARD', key)
  local oldest = now
  if c > 0 then
    oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  end
  if c < limit then
    if redis.call('ZADD', key, 'NX', now, member) == 1 then
      redis.call('PEXPIRE', key, window / 1000)
      return {1, now, limit - c - 1, 0, oldest + window}
    end
    return {1, tonumber(redis.call('ZSCORE', key, member)), limit - c, 0, oldest + window}
  end
  local s = redis.call('ZSCORE', key, member)
  if s then
    return {1, tonumber(s), 0, 0, oldest + window}
  end
  return {0, now, 0, retry_after(key, c, 1, limit, window, oldest), oldest + window}
end

local cost = tonumber(ARGV[1])
local n = #KEYS
local first = 2 * n + 2

-- Trim each window and count what is left.
local counts = {}
local allowed = 1
for i = 1, n do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[2 * i + 1]))
  local c = redis.call('ZCARD', key)
  counts[i] = c
  if c + cost > tonumber(ARGV[2 * i]) then
    allowed = 0
  end
end

local at = now
local replay = false
if allowed == 1 then
  for i = 1, n do
    local key = KEYS[i]
    local added = 0
    local j = first
    while j <= #ARGV do
      local args = {}
      local k = 0
      while j <= #ARGV and k < 1000 do
        args[2 * k + 1] = now
        args[2 * k + 2] = ARGV[j]
        k = k + 1
        j = j + 1
      end
      added = added + redis.call('ZADD', key, 'NX', unpack(args))
    end
    if added == 0 then
      -- Only the first key can hold a replay: every key gets its units in
      -- the same run.
      replay = true
      at = tonumber(redis.call('ZSCORE', key, ARGV[first]))
      break
    end
    redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]) / 1000)
  end
else
  local s = redis.call('ZSCORE', KEYS[1], ARGV[first])
  if s then
    replay = true
    allowed = 1
    at = tonumber(s)
  end
end

local reply = {allowed, at}
for i = 1, n do
  local key = KEYS[i]
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local c = counts[i]
  local oldest = now
  if c > 0 then
    oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  end
  local retry = 0
  if allowed == 0 and c + cost > limit then
    retry = retry_after(key, c, cost, limit, window, oldest)
  end
  if allowed == 1 and not replay then
    c = c + cost
  end
  local remaining = limit - c
  if remaining < 0 then
    remaining = 0
  end
  local reset = now
  if c > 0 then
    reset = oldest + window
  end
  reply[3 * i] = remaining
  reply[3 * i + 1] = retry
  reply[3 * i + 2] = reset
end
return reply
