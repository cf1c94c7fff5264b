#!/usr/bin/env bash
# Fuzz targets (fuzz/, cargo-fuzz on nightly): builds every target once, runs each for
# FUZZ_SECONDS (default 30) from the committed seeds, fails if any crashed. The repository
# is left as it was: new corpus entries and crash artifacts go to a scratch directory
# (kept on a crash; FUZZ_WORK names it). A longer run: FUZZ_SECONDS=3600 bash .ci/fuzz.sh;
# one target: FUZZ_TARGETS="smtp_session" FUZZ_SECONDS=3600 bash .ci/fuzz.sh.
# FUZZ_SEED fixes libFuzzer's random seed (default 0: a new one each run). CI fixes it, so
# that its short run walks the same inputs each time and a red run can be replayed; the
# long runs that look for new bugs leave it random.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-30}
seed=${FUZZ_SEED:-0}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal

# No sanitizer: the code under test is safe Rust (unsafe_code = forbid); overflow checks and
# debug assertions stay on (cargo-fuzz's default).
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}
fuzz=(cargo +nightly fuzz)
flags=(--sanitizer none --target-dir "$target_dir")

targets=${FUZZ_TARGETS:-$("${fuzz[@]}" list)}
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")}
mkdir -p "$work"

echo "--- fuzz: build"
started=$(date +%s)
"${fuzz[@]}" build "${flags[@]}" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
echo "built in $(( $(date +%s) - started )) s"

echo "--- fuzz: ${seconds} s per target, seed ${seed}"
failed=()
for t in $targets; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  # The scratch corpus first (libFuzzer adds to the first directory), the seeds second.
  # The session hands content out in 64 KiB chunks (Event::Content): its inputs must be
  # able to grow past that.
  extra=()
  if [ "$t" = smtp_session ]; then extra=(-max_len=200000); fi
  if "${fuzz[@]}" run "${flags[@]}" "$t" "$work/corpus/$t" "fuzz/corpus/$t" -- \
      "${extra[@]}" -seed="$seed" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    printf '%-18s ok     %10s runs  cov %6s  corpus %5s\n' "$t" "$runs" "$cov" "$corp"
  else
    artifact=$(ls "$work/artifacts/$t/" 2>/dev/null | head -1)
    printf '%-18s CRASH  %s\n' "$t" "$work/artifacts/$t/$artifact"
    grep -m1 -A12 "panicked at\|ERROR: libFuzzer" "$log" | sed 's/^/    /' || tail -20 "$log"
    failed+=("$t")
  fi
done

echo "fuzz: $(( $(date +%s) - started )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (logs and inputs in $work)" >&2
  exit 1
fi
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
