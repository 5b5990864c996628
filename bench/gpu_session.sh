#!/usr/bin/env bash
# Every GPU number of issue #4 in one short call (a lent GPU machine has minutes): the ViT-B pretraining step of
# bench/gpu_pretrain.py in bf16 eager, fp16 (GradScaler) and fp32 eager for the ratios, then bf16 under
# torch.compile. Full logs go to $OUT (or ./gpu_logs); the summary lines come last.
# Usage, from the repository root on a machine with a CUDA GPU: bash bench/gpu_session.sh
set -uo pipefail
out=${OUT:-gpu_logs}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__)" \
    | tee -a "$out/gpu.txt"

step() {  # name, time limit (s), arguments of gpu_pretrain.py
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" python3 bench/gpu_pretrain.py "$@" > "$out/$name.log" 2>&1
    echo "exit $?" >> "$out/$name.log"
}
step bf16_eager 150
step fp16_eager 90 --precision fp16 --steps 10
step fp32_eager 120 --precision fp32 --steps 10
step bf16_compile 300 --compile
for f in bf16_eager fp16_eager fp32_eager bf16_compile; do
    echo "== $f"
    grep -E "^(device|step|exit)|Error" "$out/$f.log" | tail -4
done
