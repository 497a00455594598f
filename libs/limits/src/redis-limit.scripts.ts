/**
 * Lua scripts for the Redis limit store. Each runs atomically inside Redis, so one script call is one
 * round trip that checks and reserves everything. All keys of a tenant share the `{tenantId}` hash tag
 * (one cluster slot). Numbers written back are formatted with %d: Lua would print large ones as 1e+14.
 * Time for windows comes from Redis (TIME), so replicas with skewed clocks still share one window.
 */

/**
 * KEYS: 1 key rpm, 2 tenant rpm (zsets of request ids scored by hit time)
 *       3 key tpm, 4 tenant tpm (hashes: start, used)
 *       5 key slots, 6 tenant slots (zsets of request ids scored by lease expiry)
 *       7 key day, 8 key month, 9 tenant day, 10 tenant month (hashes: spent, reserved; units of 1e-8 USD)
 *       11 leases (zset: "req|cost|mask|keyId|day|month" scored by expiry), 12 day seeded marker, 13 month seeded marker
 * ARGV: 1 request id, 2 tokens, 3 cost, 4 lease ms, 5..14 limits in KEYS order (rpm k/t, tpm k/t, slots k/t,
 *       budgets kd/km/td/tm; -1 = none), 15 window ms, 16 day ttl ms, 17 month ttl ms, 18 key prefix,
 *       19 lease member, 20 budget mask, 21 the cost of the request's useful minimum (see budget.decision.ts)
 * Returns {status (1 ok, 0 refused, 2 seed first), reason, which, detail1, detail2,
 *          key rpm used, key rpm reset, tenant rpm used, tenant rpm reset,
 *          key tpm used, key tpm reset, tenant tpm used, tenant tpm reset, key tpm start, tenant tpm start,
 *          then spent and reserved of each budget in KEYS order (-1 = no such budget), then the cost reserved}
 */
export const ADMIT_LUA = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
-- numbers from the caller are clamped: NaN, inf or a huge value must never reach %d (which wraps them)
local function clamp(v, hi) v = tonumber(v) or 0; if v ~= v or v < 0 then return 0 end; if v > hi then return hi end; return math.floor(v) end
local req, tokens, cost, leaseMs = ARGV[1], clamp(ARGV[2], 1e10), clamp(ARGV[3], 1e17), clamp(ARGV[4], 1e10)
local L = {}
for i = 1, 10 do L[i] = tonumber(ARGV[4 + i]) end
local win, dayTtl, monthTtl, prefix, member, mask = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17]), ARGV[18], ARGV[19], ARGV[20]
local minCost = math.min(clamp(ARGV[21], 1e17), cost)
local function int(n) return string.format('%d', n) end

if mask ~= '0000' and (redis.call('EXISTS', KEYS[12]) == 0 or redis.call('EXISTS', KEYS[13]) == 0) then return {2} end

-- reservations of requests whose replica died come back when their lease runs out
local expired = redis.call('ZRANGEBYSCORE', KEYS[11], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(expired) do
  local f = {}
  for part in string.gmatch(m, '[^|]+') do f[#f + 1] = part end
  local names = {prefix .. 'k:' .. f[4] .. ':d:' .. f[5], prefix .. 'k:' .. f[4] .. ':m:' .. f[6], prefix .. 'd:' .. f[5], prefix .. 'm:' .. f[6]}
  for i = 1, 4 do
    if string.sub(f[3], i, i) == '1' and redis.call('EXISTS', names[i]) == 1 then
      if redis.call('HINCRBY', names[i], 'reserved', int(-tonumber(f[2]))) < 0 then redis.call('HSET', names[i], 'reserved', 0) end
    end
  end
  redis.call('ZREM', KEYS[11], m)
end

local refusal = nil
-- budgets first: an exhausted budget is final, so say so rather than a retryable limit.
-- The rule of budget.decision.ts: final when settled spend leaves less than the request's minimum; retryable
-- when reservations in flight are in the way; else reserve min(cost, what every budget has left).
local bs, br = {-1, -1, -1, -1}, {-1, -1, -1, -1}
for i = 1, 4 do
  if L[6 + i] >= 0 then
    local v = redis.call('HMGET', KEYS[6 + i], 'spent', 'reserved')
    bs[i], br[i] = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  end
end
for i = 1, 4 do
  if not refusal and L[6 + i] >= 0 and (bs[i] >= L[6 + i] or bs[i] + minCost > L[6 + i]) then refusal = {'budget', i, bs[i], br[i]} end
end
for i = 1, 4 do
  if not refusal and L[6 + i] >= 0 and br[i] > 0 and bs[i] + br[i] + cost > L[6 + i] then refusal = {'budget', i, bs[i], br[i]} end
end
local grant = cost
for i = 1, 4 do
  if L[6 + i] >= 0 and L[6 + i] - bs[i] - br[i] < grant then grant = L[6 + i] - bs[i] - br[i] end
end
if grant < 0 then grant = 0 end
-- a clamped reservation is what the lease gives back: "req|cost|…" carries the granted cost
if grant ~= cost then member = req .. '|' .. int(grant) .. string.sub(member, string.len(req) + string.len(ARGV[3]) + 2) end

-- requests per minute: a sliding log, like the throttler's in-memory storage (refused attempts not counted)
local rc, rr = {0, 0}, {0, 0}
for s = 1, 2 do
  if L[s] >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[s], '-inf', now - win)
    rc[s] = redis.call('ZCARD', KEYS[s])
    if rc[s] > 0 then rr[s] = tonumber(redis.call('ZRANGE', KEYS[s], 0, 0, 'WITHSCORES')[2]) + win - now end
    if not refusal then
      if rc[s] >= L[s] then
        refusal = {'requests', s, rr[s], 0}
      else
        redis.call('ZADD', KEYS[s], now, req)
        redis.call('PEXPIRE', KEYS[s], win)
        rc[s] = rc[s] + 1
        if rr[s] == 0 then rr[s] = win end
      end
    end
  end
end

-- concurrent requests: leases that expire on their own if a replica dies mid-request
for s = 1, 2 do
  if L[4 + s] >= 0 and not refusal then
    redis.call('ZREMRANGEBYSCORE', KEYS[4 + s], '-inf', now)
    local n = redis.call('ZCARD', KEYS[4 + s])
    if n >= L[4 + s] then refusal = {'concurrency', s, n, 0} end
  end
end

-- tokens per minute: a window that starts with its first reservation; an empty window takes any size
local ts, tu = {0, 0}, {0, 0}
for s = 1, 2 do
  if L[2 + s] >= 0 then
    local v = redis.call('HMGET', KEYS[2 + s], 'start', 'used')
    local st = tonumber(v[1])
    if st and st + win > now then ts[s], tu[s] = st, tonumber(v[2]) or 0 else ts[s], tu[s] = now, 0 end
    if not refusal and tu[s] > 0 and tu[s] + tokens > L[2 + s] then refusal = {'tokens', s, ts[s] + win - now, tu[s]} end
  end
end

if not refusal then
  for s = 1, 2 do
    if L[4 + s] >= 0 then
      redis.call('ZADD', KEYS[4 + s], now + leaseMs, req)
      redis.call('PEXPIRE', KEYS[4 + s], leaseMs)
    end
    if L[2 + s] >= 0 then
      tu[s] = tu[s] + tokens
      redis.call('HSET', KEYS[2 + s], 'start', int(ts[s]), 'used', int(tu[s]))
      redis.call('PEXPIRE', KEYS[2 + s], ts[s] + 2 * win - now)
    end
  end
  for i = 1, 4 do
    if string.sub(mask, i, i) == '1' then
      br[i] = br[i] + grant
      redis.call('HINCRBY', KEYS[6 + i], 'reserved', int(grant))
      redis.call('PEXPIRE', KEYS[6 + i], (i % 2 == 1) and dayTtl or monthTtl)
    end
  end
  if mask ~= '0000' then
    redis.call('ZADD', KEYS[11], now + leaseMs, member)
    redis.call('PEXPIRE', KEYS[11], leaseMs + win)
  end
end

local function reset(s) if L[2 + s] >= 0 then return ts[s] + win - now end return 0 end
local r = refusal or {'', 0, 0, 0}
return {refusal and 0 or 1, r[1], r[2], r[3], r[4], rc[1], rr[1], rc[2], rr[2], tu[1], reset(1), tu[2], reset(2), ts[1], ts[2],
  bs[1], br[1], bs[2], br[2], bs[3], br[3], bs[4], br[4], grant}
`;

/**
 * KEYS: 1 key tpm, 2 tenant tpm, 3 key slots, 4 tenant slots, 5..8 budgets (kd, km, td, tm), 9 leases
 * ARGV: 1 request id, 2 lease member ('' = none), 3 mask, 4 reserved tokens, 5 actual tokens,
 *       6 reserved cost, 7 actual cost, 8 key tpm start, 9 tenant tpm start, 10 day ttl, 11 month ttl
 */
export const FINISH_LUA = `
local function int(n) return string.format('%d', n) end
local function clamp(v, hi) v = tonumber(v) or 0; if v ~= v or v < 0 then return 0 end; if v > hi then return hi end; return math.floor(v) end
local removed = 0
if ARGV[2] ~= '' then removed = redis.call('ZREM', KEYS[9], ARGV[2]) end
local estCost, actCost = clamp(ARGV[6], 1e17), clamp(ARGV[7], 1e17)
for i = 1, 4 do
  local k = KEYS[4 + i]
  -- a lease already expired has given its reservation back
  if removed == 1 and string.sub(ARGV[3], i, i) == '1' then
    if redis.call('HINCRBY', k, 'reserved', int(-estCost)) < 0 then redis.call('HSET', k, 'reserved', 0) end
  end
  if actCost > 0 then
    redis.call('HINCRBY', k, 'spent', int(actCost))
    redis.call('PEXPIRE', k, (i % 2 == 1) and tonumber(ARGV[10]) or tonumber(ARGV[11]))
  end
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local delta = clamp(ARGV[5], 1e10) - clamp(ARGV[4], 1e10)
for s = 1, 2 do
  local st = ARGV[7 + s]
  if st ~= '0' and delta ~= 0 and redis.call('HGET', KEYS[s], 'start') == st then
    if redis.call('HINCRBY', KEYS[s], 'used', int(delta)) < 0 then redis.call('HSET', KEYS[s], 'used', 0) end
  end
end
return removed
`;

/**
 * Renews the leases of one tenant's requests in flight (a live process's heartbeat). ZADD XX: a lease that
 * already ran out was given back by ADMIT and must not come back (its settle would give it back twice).
 * KEYS: 1 tenant slots, 2 leases, 3.. key slots
 * ARGV: 1 lease ms, 2 window ms, then per ticket 4 values: request id, lease member ('' = none),
 *       index of its key slots in KEYS (0 = none), '1' if it holds a tenant slot
 */
export const RENEW_LUA = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local lease = tonumber(ARGV[1])
local exp = now + lease
local touched = {}
for i = 3, #ARGV, 4 do
  local req, member, ki = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if ARGV[i + 3] == '1' then redis.call('ZADD', KEYS[1], 'XX', exp, req); touched[1] = lease end
  if ki > 0 then redis.call('ZADD', KEYS[ki], 'XX', exp, req); touched[ki] = lease end
  if member ~= '' then redis.call('ZADD', KEYS[2], 'XX', exp, member); touched[2] = lease + tonumber(ARGV[2]) end
end
for k, ttl in pairs(touched) do redis.call('PEXPIRE', KEYS[k], ttl) end
return 1
`;

/**
 * KEYS: 1 day marker, 2 month marker, 3 tenant day, 4 tenant month, then (key day, key month) pairs
 * ARGV: 1 day ttl, 2 month ttl, then from 3 on the ledger spend for KEYS[i] in ARGV[i]
 * Never lowers a counter: settles that landed while the ledger was being read are already in it.
 */
export const SEED_LUA = `
local seedDay = redis.call('EXISTS', KEYS[1]) == 0
local seedMonth = redis.call('EXISTS', KEYS[2]) == 0
for i = 3, #KEYS do
  local isDay = (i % 2 == 1)
  if (isDay and seedDay) or (not isDay and seedMonth) then
    local cur = tonumber(redis.call('HGET', KEYS[i], 'spent')) or 0
    local v = tonumber(ARGV[i]) or 0
    if v ~= v or v < 0 then v = 0 elseif v > 1e17 then v = 1e17 end
    if cur < v then redis.call('HSET', KEYS[i], 'spent', string.format('%d', v)) end
    redis.call('PEXPIRE', KEYS[i], isDay and ARGV[1] or ARGV[2])
  end
end
if seedDay then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
if seedMonth then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return 1
`;
