"""The Lua that changes money. Each script runs atomically on the primary.

Keys (one Redis, no cluster):
  ledger:balances        hash  account id → balance
  ledger:initial         hash  account id → balance at creation
  ledger:expected_total  int   sum of all initial balances ever created
  ledger:txlog           list  idempotency keys of committed transfers, in commit order
  ledger:tx:<key>        str   the stored answer for that idempotency key (JSON)
"""

BALANCES = "ledger:balances"
INITIAL = "ledger:initial"
EXPECTED = "ledger:expected_total"
TXLOG = "ledger:txlog"
SEEDED = "ledger:seeded"


def tx_key(idempotency_key: str) -> str:
    return f"ledger:tx:{idempotency_key}"


# KEYS: tx:<key>, balances, txlog     ARGV: key, from, to, amount, now_ms[, memo (version 2)]
# A replay compares from/to/amount only, so either version replays the other's record.
# Returns {status, json}: 0 new answer, 1 replay of the stored answer, 2 unknown account,
# 3 the key was used before for a different transfer.
TRANSFER = r"""
local prev = redis.call('GET', KEYS[1])
if prev then
  local p = cjson.decode(prev)
  if p['from'] ~= ARGV[2] or p['to'] ~= ARGV[3] or tonumber(p['amount']) ~= tonumber(ARGV[4]) then
    return {3, prev}
  end
  -- Rewriting the same value is a write: the WAIT that follows then confirms replication of
  -- everything up to here, the original commit included, even on a fresh connection.
  redis.call('SET', KEYS[1], prev)
  return {1, prev}
end
local amount = tonumber(ARGV[4])
local fb = redis.call('HGET', KEYS[2], ARGV[2])
local tb = redis.call('HGET', KEYS[2], ARGV[3])
if not fb or not tb then
  return {2, ''}
end
local answer = {id = ARGV[1], from = ARGV[2], to = ARGV[3], amount = amount, at_ms = tonumber(ARGV[5])}
-- Version 2 passes a memo (ARGV[6]); version 1 passes none and its records have no memo.
if ARGV[6] then
  answer['memo'] = ARGV[6]
end
if tonumber(fb) < amount then
  answer['status'] = 'rejected'
  answer['reason'] = 'insufficient_funds'
else
  redis.call('HINCRBY', KEYS[2], ARGV[2], -amount)
  redis.call('HINCRBY', KEYS[2], ARGV[3], amount)
  redis.call('RPUSH', KEYS[3], ARGV[1])
  answer['status'] = 'committed'
end
local encoded = cjson.encode(answer)
redis.call('SET', KEYS[1], encoded)
return {0, encoded}
"""

# KEYS: balances, initial, expected_total     ARGV: id, balance
# Returns 1 created, 2 already exists with this initial balance (a replayed create), 0 exists.
CREATE_ACCOUNT = r"""
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  if tonumber(existing) == tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[2], ARGV[1], existing)
    return 2
  end
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[3], ARGV[2])
return 1
"""

# KEYS: balances, initial, expected_total, seeded     ARGV: count, balance
# Creates acc-000 … acc-<count-1> once per data tier; returns how many it created now.
SEED = r"""
local created = 0
for i = 0, tonumber(ARGV[1]) - 1 do
  local id = string.format('acc-%03d', i)
  if redis.call('HSETNX', KEYS[2], id, ARGV[2]) == 1 then
    redis.call('HSET', KEYS[1], id, ARGV[2])
    redis.call('INCRBY', KEYS[3], ARGV[2])
    created = created + 1
  end
end
redis.call('SET', KEYS[4], ARGV[1])
return created
"""
