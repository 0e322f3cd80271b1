#!/bin/sh
# Release gate for a model update: compare the deployed (old) model's predictions with the
# candidate's (new) on the same labelled samples, and let the exit status decide.
# Plain POSIX sh (bash, dash, busybox ash); model-release-gate.yml runs the same command.
#
# Usage: sh gate.sh OLD NEW [OUT]
#   OLD, NEW  prediction files (.csv, .parquet, .jsonl, .npy, .npz): an `id`, the `label`
#             and a `pred` column or score columns (see `graceful compare --help`)
#   OUT       folder for summary.json and report.html (default: report)
#
# Exit status:
#   0  the update passes: McNemar's exact test finds no significant regression and the
#      negative flip rate is at most GATE_MAX_NFR
#   1  the update regresses: OUT/report.html shows which bar it broke and the flips
#   2  bad input (a missing or malformed file, a bad option), no `graceful` command, or
#      a graceful crash: stderr says what
#
# Environment:
#   GATE_MAX_NFR            highest acceptable negative flip rate, a fraction (default 0.02)
#   MLFLOW_TRACKING_URI     when set, also log the comparison to this MLflow server
#                           (needs graceful[mlflow])
#   MLFLOW_EXPERIMENT_NAME  the MLflow experiment (default model-release)

set -u

if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    echo "usage: gate.sh OLD NEW [OUT]" >&2
    exit 2
fi
old=$1
new=$2
out=${3:-report}
max_nfr=${GATE_MAX_NFR:-0.02}

if ! command -v graceful >/dev/null 2>&1; then
    echo "gate.sh: error: no \`graceful\` command on PATH (see examples/README.md)" >&2
    exit 2
fi

# graceful writes nothing on bad input: remove an earlier run's report so that it cannot
# pass for this one's.
rm -f "$out/summary.json" "$out/report.html"

# Optional MLflow logging: the extra options become "$@".
set --
if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
    set -- --mlflow-experiment "${MLFLOW_EXPERIMENT_NAME:-model-release}"
fi

graceful compare "$old" "$new" --fail-on-significant-regression \
    --max-nfr "$max_nfr" --out "$out" "$@"
status=$?

case $status in
    0)
        echo "gate.sh: the update passes (report: $out/report.html)"
        ;;
    1)
        # graceful exits 1 when a bar is broken, and so does an uncaught Python error: a
        # broken bar leaves its verdict in summary.json.
        if grep -q '"passed": false' "$out/summary.json" 2>/dev/null; then
            echo "gate.sh: the update regresses (report: $out/report.html)" >&2
        else
            echo "gate.sh: error: graceful compare failed without a verdict" >&2
            status=2
        fi
        ;;
    *)
        status=2
        ;;
esac
exit "$status"
