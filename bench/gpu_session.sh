#!/usr/bin/env bash
# Every GPU figure of issue #20 in one short call (a lent GPU machine has minutes):
#  1. the paper's pretraining step (bench/gpu_pretrain.py: ViT-B/16, 2 global + 8 local views, batch 8, bf16) in
#     eager mode with the card's measured bf16 matmul rate and a profile, then with pretraining.compile true and
#     reduce-overhead (CUDA graphs), then at batch 32 for clips/s and memory at a larger per-GPU batch;
#  2. the GPU smoke run: the whole DAG on this GPU (bench/gpu_smoke.yaml) on the reference clips laid out as the
#     four benchmarks, `snakemake -c16 all`, in what is left of DEADLINE (570 s; SKIP_BENCH=1: the smoke run only).
# Usage, from the repository root on a machine with a CUDA GPU: bash bench/gpu_session.sh [CLIPS]
# CLIPS: the reference clips with MANIFEST.csv (default ../shared/sample_videos, else .gpu_data/sample_videos).
# Where packages are missing (a lent machine's image), wheels in .whl/ are installed to /tmp/site first.
# Full logs go to $OUT (or ./gpu_logs); the summary lines come last.
set -uo pipefail
out=${OUT:-gpu_logs}
mkdir -p "$out"
start=$SECONDS
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        > "$out/pip.log" 2>&1 || { tail "$out/pip.log"; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p /tmp/svt_bin && printf '#!/bin/sh\nexec python3 -m svt "$@"\n' > /tmp/svt_bin/svt && chmod +x /tmp/svt_bin/svt
command -v svt > /dev/null || export PATH=/tmp/svt_bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__)" \
    | tee -a "$out/gpu.txt"

deadline=${DEADLINE:-570}  # seconds for the whole call; each step gets at most what is left
step() {  # name, time limit (s), arguments of gpu_pretrain.py
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - 300 - (SECONDS - start)))  # 300 s stay for the smoke run
    [ "$left" -lt "$limit" ] && limit=$left
    [ "$limit" -lt 30 ] && { echo "== $name skipped: too little time left"; return 1; }
    echo "== $name ($((SECONDS - start)) s, limit $limit s)"
    timeout "$limit" python3 bench/gpu_pretrain.py "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "exit $rc" >> "$out/$name.log"
    return $rc
}
if [ -z "${SKIP_BENCH:-}" ]; then
    step bf16_eager 100 --steps 20 --peak --profile
    step bf16_eager_batch32 45 --batch 32 --steps 5
    step bf16_compile 150 --compile true --steps 10 && step bf16_reduce_overhead 120 --compile reduce-overhead --steps 10
fi

clips=${1:-../shared/sample_videos}
[ -f "$clips/MANIFEST.csv" ] || clips=.gpu_data/sample_videos
limit=$((deadline - (SECONDS - start)))
echo "== gpu_smoke ($((SECONDS - start)) s; ${limit} s left for it)"
# a second call on the same machine (SKIP_BENCH=1) carries on where the first stopped
[ -d gpu_smoke ] || python3 bench/gpu_smoke_layout.py "$clips" gpu_smoke > "$out/gpu_smoke.log" 2>&1
smoke_start=$SECONDS
# greedy scheduler: the ILP one needs pulp, whose solver binaries a lent machine's image may not have
timeout "$limit" python3 -m snakemake -c16 all --configfile bench/gpu_smoke.yaml --scheduler greedy --keep-going \
    >> "$out/gpu_smoke.log" 2>&1
echo "exit $? after $((SECONDS - smoke_start)) s; $(grep -c '^Finished jobid' "$out/gpu_smoke.log") jobs finished" \
    >> "$out/gpu_smoke.log"
tar czf "$out/smoke_results.tgz" results logs benchmarks 2> /dev/null

for f in bf16_eager bf16_compile bf16_reduce_overhead bf16_eager_batch32; do
    [ -f "$out/$f.log" ] || continue
    echo "== $f"
    grep -E "^(step|profile|exit)|Error" "$out/$f.log" | tail -4
done
echo "== gpu_smoke"
grep -E "steps \(|Error|error" "$out/gpu_smoke.log" | tail -6
tail -2 "$out/gpu_smoke.log"
