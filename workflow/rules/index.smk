# Indexing: every video's metadata and status (corrupt files quarantined and counted), and the fixed subset of the
# pretraining set the ablations pretrain on (paper §4.3: 60K K400 videos).


rule index:
    input:
        root=get_dataset_root,
    output:
        index="resources/index/{dataset}.parquet",
        summary="resources/index/{dataset}.summary.json",
    log:
        "logs/index/{dataset}.log",
    benchmark:
        "benchmarks/index/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("data").threads
    resources:
        **slurm_resources("data"),
    params:
        options=lambda wildcards: wf.index_options(config, wildcards.dataset),
    shell:
        "svt index --dataset {wildcards.dataset} --root {input.root} {params.options} --deep --workers {threads} "
        "--out {output.index} --summary {output.summary} > {log} 2>&1"


rule ablation_subset:
    input:
        f"resources/index/{PRETRAIN_SET}.parquet",
    output:
        f"resources/index/{PRETRAIN_SET}_ablation.parquet",
    log:
        "logs/ablation_subset.log",
    benchmark:
        f"benchmarks/ablation_subset/{PRETRAIN_SET}.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        videos=config["ablations"]["subset"]["videos"],
        seed=config["ablations"]["subset"]["seed"],
    shell:
        "svt subset --index {input} --videos {params.videos} --seed {params.seed} --out {output} > {log} 2>&1"
