#!/usr/bin/env bash
# sweep.sh TAG PAIRS_FILE [extra brushwork args...]: each pair one thread, two at a time, judged -> /work/s18/TAG.jsonl
# env: BW (command, default /work/s18/bw), P (parallel jobs, default 2); BW_TILES etc pass through
set -u
tag=$1; pairs=$2; shift 2
export TAG=$tag EXTRA="$*" BW=${BW:-/work/s18/bw}
one() {
  IFS=: read c s size <<< "$1"
  S=/work/shared/images; B=/work/main/benchmarks
  stem=${c%.*}
  out=/work/s18/g/${stem}_${s}_${size}_${TAG}.png
  t=$( { OMP_NUM_THREADS=1 /usr/bin/time -f "%e %U %S %M" $BW stylize $S/content/$c --style $S/style/$s.jpg --size $size \
        -o $out -q --overwrite --seed 0 $EXTRA ; } 2>&1 | tail -1 )
  d=$(cd $B && BRUSHWORK_JUDGE_CACHE=$B/.cache python judges.py $out --content $S/content/$c --style $S/style/$s.jpg)
  echo "{\"pair\": \"$stem+$s\", \"size\": $size, \"tag\": \"$TAG\", \"extra\": \"$EXTRA\", \"env\": \"tiles=${BW_TILES:-1}\", \"time\": \"$t\", \"out\": $d}" >> /work/s18/$TAG.jsonl
}
export -f one
xargs -P ${P:-2} -I{} bash -c 'one {}' < $pairs
