#!/usr/bin/env bash
# One-command setup: runs the named steps (default: all) in order, timing each one.
# Usage: setup/bootstrap.sh [step...]   steps: system venv python39 pulumi docker host-image alluxio
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
all_steps=(system venv python39 pulumi docker host-image alluxio)
steps=("$@")
((${#steps[@]})) || steps=("${all_steps[@]}")
ms() { echo $(( $(date +%s%N) / 1000000 )); }
fmt() { printf "%d.%01d" $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
total_start=$(ms)
for step in "${steps[@]}"; do
  script="$here/steps/$step.sh"
  [[ -f "$script" ]] || { echo "[setup] unknown step '$step'; known steps: ${all_steps[*]}" >&2; exit 2; }
  start=$(ms)
  echo "[setup] step $step ..." >&2
  SETUP_STEP="$step" bash "$script"
  printf '[setup] step %-10s done in %ss\n' "$step" "$(fmt $(( $(ms) - start )))" >&2
done
printf '[setup] all steps done in %ss\n' "$(fmt $(( $(ms) - total_start )))" >&2
