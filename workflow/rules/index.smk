# Indexing: every video's metadata and status (corrupt files quarantined and counted), and the fixed subset of the
# pretraining set the ablations pretrain on (paper §4.3: 60K K400 videos).


rule index:
    conda:
        CONDA_ENV
    input:
        root=lambda wildcards: dataset_root(wildcards.dataset),
    output:
        index="resources/index/{dataset}.parquet",
        summary="resources/index/{dataset}.summary.json",
    params:
        options=lambda wildcards: index_options(wildcards.dataset),
    log:
        "logs/index/{dataset}.log",
    benchmark:
        "benchmarks/index/{dataset}.tsv"
    threads: res("data")["threads"]
    resources:
        **slurm_resources("data"),
    shell:
        "svt index --dataset {wildcards.dataset} --root {input.root} {params.options} --deep --workers {threads} "
        "--out {output.index} --summary {output.summary} > {log} 2>&1"


rule ablation_subset:
    conda:
        CONDA_ENV
    input:
        f"resources/index/{PRETRAIN_SET}.parquet",
    output:
        f"resources/index/{PRETRAIN_SET}_ablation.parquet",
    params:
        videos=config["ablations"]["subset"]["videos"],
        seed=config["ablations"]["subset"]["seed"],
    log:
        "logs/ablation_subset.log",
    benchmark:
        f"benchmarks/ablation_subset/{PRETRAIN_SET}.tsv"
    threads: res("default")["threads"]
    resources:
        **slurm_resources("default"),
    shell:
        "svt subset --index {input} --videos {params.videos} --seed {params.seed} --out {output} > {log} 2>&1"
