-- Progression now merges a player's boss kills in SQL (`json_each`), which reads the keys as
-- text, and text cannot hold a NUL. A boss id with one was stored escaped (`\u0000`) in the JSON;
-- such a row would fail every later merge, so its NULs become U+FFFD, as new kills are stored.
UPDATE player_progress
SET boss_kills = replace(boss_kills::text, '\u0000', '\ufffd')::json
WHERE strpos(boss_kills::text, '\u0000') > 0;
