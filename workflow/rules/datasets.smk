# Datasets: the synthetic demo sets (svt synth), and the optional re-encoded copy (decoding dominates training
# cost); the real benchmarks' download rules are in download.smk.


rule synthesize:
    conda:
        CONDA_ENV
    output:
        directory("resources/synthetic/{dataset}"),
    params:
        cfg=lambda wildcards: " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in config["synthetic"].items() if k != "seed"
        ),
        seed=config.get("synthetic", {}).get("seed", 0),
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        "benchmarks/synthesize/{dataset}.tsv"
    threads: res("data")["threads"]
    resources:
        **slurm_resources("data"),
    shell:
        "svt synth --dataset {wildcards.dataset} --out {output} --seed {params.seed} --workers {threads} "
        "{params.cfg} > {log} 2>&1"


rule reencode:
    conda:
        CONDA_ENV
    input:
        lambda wildcards: source_root(wildcards.dataset),
    output:
        directory("resources/reencoded/{dataset}"),
    params:
        short_side=lambda wildcards: config["datasets"][wildcards.dataset]["reencode"]["short_side"],
        gop=lambda wildcards: config["datasets"][wildcards.dataset]["reencode"].get("gop", 16),
    log:
        "logs/reencode/{dataset}.log",
    benchmark:
        "benchmarks/reencode/{dataset}.tsv"
    threads: res("data")["threads"]
    resources:
        **slurm_resources("data"),
    shell:
        "svt reencode --root {input} --out {output} --short-side {params.short_side} --gop {params.gop} "
        "--workers {threads} > {log} 2>&1"
