-- Token bucket, one atomic step: refill for the time elapsed since the last call, then take `cost`
-- tokens if that many are there. Redis runs a script to completion with no other command in
-- between, so concurrent callers (any number of gateway replicas) can never both spend the same
-- token: admitted(t) <= burst + rate*t holds across replicas.
--
-- Shape after upstash/ratelimit-js src/lua-scripts/single.ts (tokenBucketLimitScript), with the
-- clock taken from the Redis server instead of the callers, so replicas with skewed clocks agree.
--
-- KEYS[1]  the bucket: a hash {tokens = <float>, ts = <microseconds>}. Callers hash-tag it
--          ({infergate:rl:<subject>}:<model>) so it is Cluster-safe; it is the only key touched.
-- ARGV[1]  refill rate, tokens per second (>= 0; may be fractional)
-- ARGV[2]  burst: bucket capacity (> 0)
-- ARGV[3]  cost of this request in tokens (>= 0)
-- ARGV[4]  TTL cap in ms: the longest a bucket key may live (see the PEXPIRE below)
--
-- Returns {allowed (1|0), remaining (floor of tokens left), resetMs (until the bucket is full),
--          retryAfterMs (until `cost` tokens are there; 0 when allowed; -1 when never: cost > burst,
--          or no refill at all)}. Redis turns Lua numbers into integers, hence the explicit
--          floor/ceil.

-- TIME is non-deterministic. Redis >= 5 replicates scripts by their effects (the HSET below, not the
-- script), which makes TIME legal before a write; Redis 7 allows nothing else. On 3.2-4 effects
-- replication must be asked for, and on 7 the call is a deprecated no-op, so ask when it exists.
if redis.replicate_commands then redis.replicate_commands() end

local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local maxTtlMs = tonumber(ARGV[4])

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

local allowed = 0
local retryAfterMs = 0
if tokens + EPS >= cost then
  allowed = 1
  tokens = tokens - cost
  -- Only an admission changes state, and it is written with the server's time. A denial writes
  -- nothing: rejected requests consume nothing, and the stored {tokens, ts} already yields the same
  -- refill later (linear up to the cap).
  redis.call('HSET', key, 'tokens', tokens, 'ts', now)
elseif cost > burst or rate <= 0 then
  retryAfterMs = -1
else
  retryAfterMs = math.ceil((cost - tokens) * 1000 / rate)
end

-- Time until the bucket is full again. A full bucket is the same as no key, so the key may expire
-- then: every call (admission or denial) moves the expiry to that moment plus a second of margin,
-- so no bucket key ever lives without a TTL. With no refill (rate 0) or a very slow one, the cap
-- bounds the key's life; such a bucket then forgets its debt early (documented in docs/throttling.md).
local resetMs = 0
if tokens + EPS < burst then
  if rate > 0 then
    resetMs = math.ceil((burst - tokens) * 1000 / rate)
  else
    resetMs = maxTtlMs
  end
end
-- PEXPIRE on a missing key (a denial before any admission) is a no-op and creates nothing.
redis.call('PEXPIRE', key, math.min(resetMs + 1000, maxTtlMs))

return {allowed, math.floor(tokens + EPS), resetMs, retryAfterMs}
