//! Leaderboard windows and periods (SPEC section 6). Being written.
