-- Each release of a quarantined event gets a number, so the leaderboards can keep a release
-- cursor next to their log cursor: a release reaches the boards exactly once, and one the hot
-- state could not take at the time (Redis down) is applied when it is back. The numbers come
-- from one counter row that each release locks until it commits, so they become visible in
-- order and a reader never sees number n+1 before n (a sequence would allow that). Releases
-- are rare operator actions: serializing them costs nothing.
ALTER TABLE suspicious_events ADD COLUMN release_seq BIGINT;
CREATE UNIQUE INDEX suspicious_events_release ON suspicious_events (release_seq)
    WHERE release_seq IS NOT NULL;
CREATE TABLE release_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last     BIGINT NOT NULL
);
INSERT INTO release_counter (last) VALUES (0);
