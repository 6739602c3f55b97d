-- One request against one rate-limit bucket (appended to gcra.lua).
-- KEYS[1]: the bucket (<ns>:rl:<limit>:<limited key>).
-- ARGV[1]: T, the emission interval in microseconds; ARGV[2]: N, the burst.
-- Returns {1, 0} when allowed, {0, microseconds to wait} when refused.
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
