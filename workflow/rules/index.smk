# Indexing: every video's metadata and status (corrupt files quarantined and counted), and the fixed
# K400 subset the ablations pretrain on (paper §4.3: 60K videos).


rule index:
    conda:
        CONDA_ENV
    input:
        root=lambda wildcards: dataset_root(wildcards.dataset),
    output:
        index="resources/index/{dataset}.parquet",
        summary="resources/index/{dataset}.summary.json",
    params:
        split=lambda wildcards: config["datasets"][wildcards.dataset]["split"],
    log:
        "logs/index/{dataset}.log",
    benchmark:
        "benchmarks/index/{dataset}.tsv"
    threads: res("data")["threads"]
    resources:
        **slurm_resources("data"),
    shell:
        "svt index --dataset {wildcards.dataset} --root {input.root} --split {params.split} --workers {threads} "
        "--out {output.index} --summary {output.summary} > {log} 2>&1"


rule ablation_subset:
    conda:
        CONDA_ENV
    input:
        "resources/index/kinetics400.parquet",
    output:
        "resources/index/kinetics400_ablation.parquet",
    params:
        videos=config["ablations"]["subset"]["videos"],
        seed=config["ablations"]["subset"]["seed"],
    log:
        "logs/ablation_subset.log",
    benchmark:
        "benchmarks/ablation_subset/kinetics400.tsv"
    threads: res("default")["threads"]
    resources:
        **slurm_resources("default"),
    shell:
        "svt subset --index {input} --videos {params.videos} --seed {params.seed} --out {output} > {log} 2>&1"
