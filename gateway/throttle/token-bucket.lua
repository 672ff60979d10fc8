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
-- lease-book.ts): after the requests are decided it takes up to `want` tokens ahead for the caller,
-- only from above half the burst, so the lower half is always decided request by request; and it
-- takes back tokens a lease did not use. Tokens held in leases still count against the burst: each
-- holder's unused tokens are recorded in the bucket (field `l:<holder>`, "tokens,untilUs,seq",
-- replaced by every newer command of that holder and dropped once its lease can no longer be used),
-- and the bucket refills only up to `burst` minus everything held. So the bucket plus all leases
-- never hold more than `burst`, and admitted(t) <= burst + rate*t still holds across replicas.
--
-- Shape after upstash/ratelimit-js src/lua-scripts/single.ts (tokenBucketLimitScript), with the
-- clock taken from the Redis server instead of the callers, so replicas with skewed clocks agree.
--
-- KEYS[1]  the bucket: a hash {tokens = <float>, ts = <microseconds>}. Callers hash-tag it
--          ({infergate:rl:<subject>}:<model>) so it is Cluster-safe; it is the only key touched.
-- ARGV[1]  refill rate, tokens per second (>= 0; may be fractional)
-- ARGV[2]  burst: bucket capacity (> 0)
-- ARGV[3]  TTL cap in ms: the longest a bucket key may live (see the PEXPIRE below)
-- ARGV[4]  leaseMs: how long the caller may use tokens it gets ahead (counted by the caller from
--          before it sent this call, so its lease always ends before this record does)
-- ARGV[5]  holder: the caller's id (one per limiter); "" with no lease
-- ARGV[6]  seq: the caller's command number, rising. ioredis resends a command refused with
--          NOSCRIPT as EVAL once the refusal is back, so two commands of one holder can run out of
--          order: an older one's `held` is stale and is not recorded
-- ARGV[7]  held: tokens the caller's lease on this bucket still holds and keeps (0: none)
-- ARGV[8]  returned: unused tokens the caller gives back (its lease ended; >= 0)
-- ARGV[9]  want: whole tokens the caller asks ahead, after the requests (>= 0)
-- ARGV[10..] the cost of each request in tokens (>= 0), in arrival order; none for a give-back
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
local leaseMs = tonumber(ARGV[4])
local holder = ARGV[5]
local seq = tonumber(ARGV[6])
local held = tonumber(ARGV[7])
local returned = tonumber(ARGV[8])
local want = tonumber(ARGV[9])

-- TIME = {unix seconds, microseconds}. Microseconds since the epoch (~1.8e15) are exact in a Lua
-- double (2^53 ~ 9e15).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- A missing key is a full bucket: a bucket left alone refills to `burst` and then its key expires.
-- The fields are the state {tokens, ts} and one `l:<holder>` per gateway holding (or lately
-- holding) a lease.
local fields = redis.call('HGETALL', key)
local tokens, ts
local ownField = 'l:' .. holder
-- Every record as stored: the cap the bucket had since the last write. Records that ran out since
-- (`expired`) stopped counting at their end, the caller's own at its new report.
local heldStored = 0
local heldByOthers = 0
local ownHeld, ownUntil, ownSeq = 0, 0, -1
local latestUntil = 0
local expired = {}
local records = 0
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  if name == 'tokens' then
    tokens = tonumber(value)
  elseif name == 'ts' then
    ts = tonumber(value)
  else
    local a = string.find(value, ',', 1, true)
    local b = string.find(value, ',', a + 1, true)
    local n = tonumber(string.sub(value, 1, a - 1))
    local untilUs = tonumber(string.sub(value, a + 1, b - 1))
    records = records + 1
    heldStored = heldStored + n
    if name == ownField then ownSeq = tonumber(string.sub(value, b + 1)) end
    if untilUs <= now then
      expired[#expired + 1] = { name = name, n = n, untilUs = untilUs }
    elseif name == ownField then
      ownHeld, ownUntil = n, untilUs
    else
      heldByOthers = heldByOthers + n
      latestUntil = math.max(latestUntil, untilUs)
    end
  end
end
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end

-- The server clock can step back (NTP, failover to a replica): never refill by negative time.
-- min(): the bucket and every lease together never hold more than burst, also when the plan's
-- burst was lowered since. The refill since the last write is capped as the records stood all that
-- time, piece by piece as records ran out; and with records about, the state is written on every
-- call, so a refill the cap held back is not earned again later, once the cap has risen.
table.sort(expired, function(x, y) return x.untilUs < y.untilUs end)
local from = ts
for _, record in ipairs(expired) do
  if record.untilUs > from then
    tokens = math.min(math.max(0, burst - heldStored), tokens + (record.untilUs - from) * rate / 1000000)
    from = record.untilUs
  end
  heldStored = heldStored - record.n
  if record.name ~= ownField then redis.call('HDEL', key, record.name) end -- its lease can no longer be used
end
if now > from then tokens = math.min(math.max(0, burst - heldStored), tokens + (now - from) * rate / 1000000) end
local changed = records > 0

-- The caller's lease as of this command: its report, unless a newer command of it ran first.
local fresh = holder ~= '' and seq > ownSeq
if fresh then ownHeld = held end
local cap = math.max(0, burst - heldByOthers - ownHeld)
-- Unused tokens of an ended lease come back, within the cap.
if returned > 0 then
  tokens = math.min(cap, tokens + returned)
  changed = true
end

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
for i = 10, #ARGV do
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

-- Tokens ahead come only from above half the burst: whatever leases hold, the lower half of the
-- bucket is decided request by request, the way every replica sees it.
local granted = 0
if want > 0 then
  granted = math.min(want, math.floor(tokens - burst / 2 + EPS))
  if granted > 0 then
    tokens = tokens - granted
    changed = true
  else
    granted = 0
  end
end
out[#out + 1] = granted
out[#out + 1] = math.floor(tokens + EPS)

-- The caller's lease record: what it holds now, until it can no longer use it, and its newest
-- command. Written once the caller leases here (a grant, a give-back) and kept while empty too (until
-- it runs out), so an older command arriving late is known; a caller with no lease here writes none.
local nowHeld = ownHeld + granted
if holder ~= '' and (nowHeld > 0 or returned > 0 or ownSeq >= 0) then
  ownUntil = math.max(ownUntil, now + leaseMs * 1000)
  redis.call('HSET', key, ownField, nowHeld .. ',' .. string.format('%.0f', ownUntil) .. ',' .. string.format('%.0f', fresh and seq or ownSeq))
  latestUntil = math.max(latestUntil, ownUntil)
end

-- Only an admission, tokens moved to or from a lease, or leases about change state, written with the
-- server's time. Otherwise denials write nothing: rejected requests consume nothing, and the stored
-- {tokens, ts} already yields the same refill later (linear up to the cap).
if changed then redis.call('HSET', key, 'tokens', tokens, 'ts', now) end

-- Every call (admissions or denials only) moves the expiry to the moment the bucket is full again
-- plus a second of margin, so no bucket key ever lives without a TTL. PEXPIRE on a missing key (a
-- denial before any admission) is a no-op and creates nothing.
-- A bucket with leases out lives at least as long as they do: a key gone early would be a full
-- bucket beside the leases.
local ttlMs = math.min(resetMsOf(tokens) + 1000, maxTtlMs)
if latestUntil > now then ttlMs = math.max(ttlMs, math.ceil((latestUntil - now) / 1000) + 1000) end
redis.call('PEXPIRE', key, ttlMs)

return out
