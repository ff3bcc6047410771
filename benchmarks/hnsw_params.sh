#!/bin/bash
# HNSW build time and recall per (M, ef_construction), through the CLI as a user would run it.
# Usage: benchmarks/hnsw_params.sh [rows]   (default 100000; scratch data in ./bench-data)
set -euo pipefail
rows=${1:-100000}
ls_cmd=${LAIONSEARCH:-.venv/bin/laionsearch}
work=bench-data
parts=$work/hnsw-params-$rows
[ -f "$parts/metadata/metadata_0.parquet" ] || $ls_cmd synth "$parts" --parts 0 --rows "$rows" --seed 1 > /dev/null
for setting in "16 64" "32 128" "64 256"; do
  set -- $setting
  db=$work/hnsw-params-store
  rm -rf "$db"
  $ls_cmd --db "$db" ingest "$parts" 2> /dev/null > /dev/null
  started=$(date +%s.%N)
  $ls_cmd --db "$db" index create --m "$1" --ef-construction "$2" 2> /dev/null > /dev/null
  echo "M=$1 ef_construction=$2: index create $(echo "$(date +%s.%N) - $started" | bc) s"
  $ls_cmd --db "$db" eval --queries 200 --ef 32,64,128,256 --format csv
  rm -rf "$db"
done
