-- A player's progress row is rewritten by every batch that carries one of their events. Room
-- left on each page lets the new version go beside the old one (a HOT update: no new index
-- entry, and the old version is pruned in place); full pages made two updates in three
-- non-HOT under load. Applies to pages written from now on.
ALTER TABLE player_progress SET (fillfactor = 70);
