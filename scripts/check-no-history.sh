#!/usr/bin/env bash
# Fails when a tracked file tells the history of the code's making instead of what the code is:
# numbered work sessions or rounds, issue numbers, "used to", "no longer", "previously",
# experiments that did not pay, earlier binaries. Comments and docs describe the code as it is
# now; history belongs in commit messages, dated figures in docs/performance.md.
# Usage: scripts/check-no-history.sh   (from anywhere in the repository)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

ordinal='(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|[0-9]+(st|nd|rd|th))'
patterns=(
  "\\b${ordinal}[- ](session|round|pass|iteration)\\b"
  '\b(session|round|iteration)s? [0-9]+\b'
  '\b(last|previous|earlier|later) (session|round)s?\b'
  '\bthis round\b'
  '\bissues? #?[0-9]+\b'
  '\bused to (be|do|have|hold|take|run|answer|return|keep|call|count|store|send|go|live|sit|cost|write|read)\b'
  '\bno longer (used|needed|uses|does|has|kept|called)\b'
  '\bpreviously\b'
  '\bformerly\b'
  '\bbefore (this|the) change\b'
  '\bdid not pay\b'
  '\b(earlier|previous|older|old|the last) (binary|binaries|build of|version of the code)\b'
  '\bexperiment(s|al build)?\b'
  '\bwe (tried|reverted|dropped|removed|replaced)\b'
  # The repository stands alone: nothing points at documents outside it.
  '\.\./shared|SPEC\.md|\bSPEC sections?\b|\bseeds/'
)

args=()
for p in "${patterns[@]}"; do args+=(-e "$p"); done

# "a round trip" and "round(x)" are about networks and arithmetic, not history. Applied
# migrations are left as written: sqlx checksums them, so editing one breaks existing databases.
found=$(git grep -n -I -i -E "${args[@]}" -- . \
    ':!Cargo.lock' ':!**/package-lock.json' ':!crates/liveops-server/web/vendor/**' \
    ':!scripts/check-no-history.sh' ':!crates/liveops-store/migrations/**' | grep -v -i -E 'round[- ]trip' || true)
if [ -n "$found" ]; then
  printf '%s\n' "$found"
  echo >&2
  echo "check-no-history: the lines above tell the history of the code; say what it does now" >&2
  exit 1
fi
echo "check-no-history: no development history found"
