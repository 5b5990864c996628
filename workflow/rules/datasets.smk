# Datasets: the synthetic demo sets (svt synth), and the optional re-encoded copy (decoding dominates training
# cost); the real benchmarks' download rules are in download.smk.


rule synthesize:
    output:
        directory("resources/synthetic/{dataset}"),
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        "benchmarks/synthesize/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("data").threads
    resources:
        **slurm_resources("data"),
    params:
        cfg=lambda wildcards: " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in config["synthetic"].items() if k != "seed"
        ),
        seed=config.get("synthetic", {}).get("seed", 0),
    shell:
        "svt synth --dataset {wildcards.dataset} --out {output} --seed {params.seed} --workers {threads} "
        "{params.cfg} > {log} 2>&1"


rule reencode:
    input:
        lambda wildcards: wf.source_root(config, wildcards.dataset),
    output:
        directory("resources/reencoded/{dataset}"),
    log:
        "logs/reencode/{dataset}.log",
    benchmark:
        "benchmarks/reencode/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("data").threads
    resources:
        **slurm_resources("data"),
    params:
        short_side=lambda wildcards: wf.dataset(config, wildcards.dataset).reencode.short_side,
        gop=lambda wildcards: wf.dataset(config, wildcards.dataset).reencode.gop,
    shell:
        "svt reencode --root {input} --out {output} --short-side {params.short_side} --gop {params.gop} "
        "--workers {threads} > {log} 2>&1"
