# Datasets: the synthetic demo sets (svt synth); the real benchmarks' download rules are in download.smk.


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
