package redisstore

import "github.com/redis/go-redis/v9"

// The scripts run atomically inside Redis (EVALSHA; a script runs to the end
// before any other command), so two replicas charging the same key can never
// both read the old value. Times and durations are integer microseconds:
// Redis' Lua numbers are doubles, exact up to 2^53, and Unix time in
// nanoseconds (~1.7e18) is not, in microseconds (~1.7e15) it is. Numbers
// written back are formatted with %.0f, since Lua 5.1's tostring would write
// 1.7649e+15 and lose digits.

// rateScript is state.GCRA, line for line.
//
// KEYS[1] the counter. ARGV: now, interval, capacity, cost (1 charge, 0 peek).
// Returns {allowed, remaining, retry_after, reset_after}.
var rateScript = redis.NewScript(rateScriptSrc)

const rateScriptSrc = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local tolerance = interval * capacity
local nxt = tat + interval * cost
local ahead = nxt - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance, tat - now}
end
if cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil(ahead / 1000) + 1)
end
return {1, math.floor((tolerance - ahead) / interval), 0, ahead}
`

// strikeScript counts an offence in a two-counter sliding window (as
// state.slidingCount) and, when the count reaches the threshold, writes the
// escalated ban record (as Memory.escalate). Both keys share a hash tag, so
// the script is valid on Redis Cluster too.
//
// KEYS[1] the strike counter, KEYS[2] the ban record. ARGV: now, window,
// after, ban_for, factor, max_ban, remember, reason, key.
// Returns {banned, until}.
var strikeScript = redis.NewScript(strikeScriptSrc)

const strikeScriptSrc = `
local now = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local after = tonumber(ARGV[3])
local ws = now - (now % w)
local s = redis.call('HMGET', KEYS[1], 's', 'p', 'c')
local start = tonumber(s[1])
local prev = tonumber(s[2]) or 0
local cur = tonumber(s[3]) or 0
if start ~= ws then
  if start == ws - w then prev = cur else prev = 0 end
  cur = 0
  start = ws
end
cur = cur + 1
local count = cur
local elapsed = now - start
if prev > 0 and elapsed < w then
  count = math.floor(prev * (w - elapsed) / w + 0.5) + cur
end
if count < after then
  redis.call('HSET', KEYS[1], 's', string.format('%.0f', start), 'p', prev, 'c', cur)
  redis.call('PEXPIRE', KEYS[1], math.ceil((start + 2 * w - now) / 1000))
  return {0, 0}
end
redis.call('DEL', KEYS[1])
local b = redis.call('HMGET', KEYS[2], 'until', 'forget', 'level')
local old = tonumber(b[1]) or 0
local level = 0
local forget = tonumber(b[2])
if forget and forget > now then level = tonumber(b[3]) or 0 end
level = level + 1
local dur = tonumber(ARGV[4])
local factor = tonumber(ARGV[5])
local maxban = tonumber(ARGV[6])
if factor > 1 and level > 1 then dur = dur * factor ^ (level - 1) end
if dur > maxban then dur = maxban end
local ends = now + math.floor(dur)
if old > ends then ends = old end
forget = ends + tonumber(ARGV[7])
redis.call('HSET', KEYS[2], 'until', string.format('%.0f', ends), 'forget', string.format('%.0f', forget),
  'level', level, 'reason', ARGV[8], 'key', ARGV[9])
redis.call('PEXPIRE', KEYS[2], math.ceil((forget - now) / 1000))
return {1, ends}
`

// banScript sets a ban by hand (or copies one from the local fallback after
// an outage), keeping the key's escalation level while it is remembered.
//
// KEYS[1] the ban record. ARGV: now, until, reason, key, mode ("set", or
// "max" to only ever lengthen a ban: a copy must not shorten one that
// another replica escalated meanwhile).
var banScript = redis.NewScript(banScriptSrc)

const banScriptSrc = `
local now = tonumber(ARGV[1])
local u = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'until', 'forget', 'level')
local old = tonumber(b[1]) or 0
local forget = tonumber(b[2]) or 0
local level = 0
if forget > now then level = tonumber(b[3]) or 0 else forget = 0 end
if ARGV[5] == 'max' and old > u then return 0 end
if forget < u then forget = u end
if forget <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'until', string.format('%.0f', u), 'forget', string.format('%.0f', forget),
  'level', level, 'reason', ARGV[3], 'key', ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((forget - now) / 1000))
return 1
`

// unbanScript deletes a ban record and says whether the ban was in force.
// KEYS[1] the ban record. ARGV: now.
var unbanScript = redis.NewScript(unbanScriptSrc)

const unbanScriptSrc = `
local u = tonumber(redis.call('HGET', KEYS[1], 'until'))
redis.call('DEL', KEYS[1])
if u and u > tonumber(ARGV[1]) then return 1 end
return 0
`

// scriptSources are loaded with SCRIPT LOAD after NOSCRIPT. (Not through
// redis.Script.Load: on a pipeline it would read the reply before it
// arrives and store an empty digest.)
var scriptSources = []string{rateScriptSrc, strikeScriptSrc, banScriptSrc, unbanScriptSrc}
