-- Token bucket, one atomic step for one or more requests: refill for the time elapsed since the
-- last call, then take each request's `cost`, in arrival order, if that many tokens are there.
-- Redis runs a script to completion with no other command in between, so concurrent callers (any
-- number of gateway replicas) can never both spend the same token: admitted(t) <= burst + rate*t
-- holds across replicas.
--
-- Several requests in one call (the limiter coalesces concurrent takes of one bucket, see
-- redis-limiter.ts) are decided exactly as the same requests called one by one at the same instant:
-- each is admitted when the tokens left by the ones before it cover its cost, and a denial takes
-- nothing, so a later, cheaper request can still be admitted after a costly one was denied.
--
-- A call can also move tokens between the shared bucket and one gateway's lease (redis-limiter.ts,
-- "Leases"): after the requests are decided it takes up to `lease` tokens ahead for the caller,
-- only from above half the burst, so the lower half is always decided request by request; or it
-- gives back tokens a lease did not use. Tokens taken ahead are spent like any others (the caller
-- admits requests with them, or gives them back), so admitted(t) <= burst + rate*t still holds.
--
-- Shape after upstash/ratelimit-js src/lua-scripts/single.ts (tokenBucketLimitScript), with the
-- clock taken from the Redis server instead of the callers, so replicas with skewed clocks agree.
--
-- KEYS[1]  the bucket: a hash {tokens = <float>, ts = <microseconds>}. Callers hash-tag it
--          ({infergate:rl:<subject>}:<model>) so it is Cluster-safe; it is the only key touched.
-- ARGV[1]  refill rate, tokens per second (>= 0; may be fractional)
-- ARGV[2]  burst: bucket capacity (> 0)
-- ARGV[3]  TTL cap in ms: the longest a bucket key may live (see the PEXPIRE below)
-- ARGV[4]  lease: > 0 asks for up to that many whole tokens ahead, after the requests; < 0 gives
--          that many back (never past burst); 0 neither
-- ARGV[5..] the cost of each request in tokens (>= 0), in arrival order; none for a give-back
--
-- Returns, per request in the order given, four integers: allowed (1|0), remaining (floor of the
-- tokens left after it), resetMs (until the bucket is full, after it), retryAfterMs (until its cost
-- is there; 0 when allowed; -1 when never: cost > burst, or no refill at all); then two more: the
-- tokens granted ahead, and the whole tokens left in the bucket after that. Redis turns Lua numbers
-- into integers, hence the explicit floor/ceil.

-- TIME is non-deterministic. Redis >= 5 replicates scripts by their effects (the HSET below, not the
-- script), which makes TIME legal before a write; Redis 7 allows nothing else. On 3.2-4 effects
-- replication must be asked for, and on 7 the call is a deprecated no-op, so ask when it exists.
if redis.replicate_commands then redis.replicate_commands() end

local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxTtlMs = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])

-- TIME = {unix seconds, microseconds}. Microseconds since the epoch (~1.8e15) are exact in a Lua
-- double (2^53 ~ 9e15).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- A missing key is a full bucket: a bucket left alone refills to `burst` and then its key expires.
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end

-- The server clock can step back (NTP, failover to a replica): never refill by negative time.
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
-- min(): a bucket never holds more than burst, also when the plan's burst was lowered since.
tokens = math.min(burst, tokens + elapsed * rate / 1000000)

-- Float sums of many small refills can land a hair below an integer (4.9999999 for 5); this much
-- slack is a billionth of a token, far below anything a caller can observe.
local EPS = 1e-9

-- Time until the bucket is full again. A full bucket is the same as no key, so the key may expire
-- then. With no refill (rate 0) or a very slow one, the TTL cap bounds the key's life; such a
-- bucket then forgets its debt early (documented in docs/throttling.md).
local function resetMsOf(left)
  if left + EPS >= burst then return 0 end
  if rate > 0 then return math.ceil((burst - left) * 1000 / rate) end
  return maxTtlMs
end

local out = {}
local changed = false
for i = 5, #ARGV do
  local cost = tonumber(ARGV[i])
  local allowed = 0
  local retryAfterMs = 0
  if tokens + EPS >= cost then
    allowed = 1
    changed = true
    tokens = tokens - cost
  elseif cost > burst or rate <= 0 then
    retryAfterMs = -1
  else
    retryAfterMs = math.ceil((cost - tokens) * 1000 / rate)
  end
  out[#out + 1] = allowed
  out[#out + 1] = math.floor(tokens + EPS)
  out[#out + 1] = resetMsOf(tokens)
  out[#out + 1] = retryAfterMs
end

-- Tokens ahead come only from above half the burst: whatever a lease holds, the lower half of the
-- bucket is decided request by request, the way every replica sees it.
local granted = 0
if lease > 0 then
  granted = math.min(lease, math.floor(tokens - burst / 2 + EPS))
  if granted > 0 then
    tokens = tokens - granted
    changed = true
  else
    granted = 0
  end
elseif lease < 0 and tokens + EPS < burst then
  tokens = math.min(burst, tokens - lease)
  changed = true
end
out[#out + 1] = granted
out[#out + 1] = math.floor(tokens + EPS)

-- Only an admission (or a lease) changes state, and it is written with the server's time. Denials
-- write nothing: rejected requests consume nothing, and the stored {tokens, ts} already yields the
-- same refill later (linear up to the cap).
if changed then redis.call('HSET', key, 'tokens', tokens, 'ts', now) end

-- Every call (admissions or denials only) moves the expiry to the moment the bucket is full again
-- plus a second of margin, so no bucket key ever lives without a TTL. PEXPIRE on a missing key (a
-- denial before any admission) is a no-op and creates nothing.
redis.call('PEXPIRE', key, math.min(resetMsOf(tokens) + 1000, maxTtlMs))

return out
