# Ablations (paper §4.3, Tables 4-8): each variant = pretraining on the fixed K400 subset with one change, then
# linear evaluation on UCF-101 and HMDB-51 with a single (slow) view, as the paper's ablation rows; Table 8 adds
# the baseline with slow-fast inference. One variant reruns alone:
#   snakemake results/ablations/<variant>/ucf101_linear.json


rule ablation_pretrain:
    conda:
        CONDA_ENV
    input:
        index="resources/index/kinetics400_ablation.parquet",
        root=dataset_root("kinetics400"),
        init=spatial_init_input(),
    output:
        teacher="results/ablations/{variant}/teacher.pth",
        meta="results/ablations/{variant}/teacher.pth.json",
    params:
        settings=lambda wildcards: settings(pretraining_settings(wildcards.variant)),
        launch=launch("pretrain"),
        init=lambda wildcards, input: f"--init {input.init}" if input.init else "",
    log:
        "logs/ablations/{variant}/pretrain.log",
    benchmark:
        "benchmarks/ablation_pretrain/{variant}.tsv"
    threads: res("pretrain")["threads"]
    resources:
        **slurm_resources("pretrain"),
    shell:
        "{params.launch} pretrain --config {params.settings:q} --index {input.index} --root {input.root} "
        "--work work/ablations/{wildcards.variant} --out {output.teacher} {params.init} > {log} 2>&1"


rule ablation_linear:
    conda:
        CONDA_ENV
    input:
        checkpoint="results/ablations/{variant}/teacher.pth",
        index="resources/index/{dataset}.parquet",
        root=lambda wildcards: dataset_root(wildcards.dataset),
    output:
        "results/ablations/{variant}/{dataset}_linear{inference}.json",
    wildcard_constraints:
        inference="|_slowfast",
    params:
        settings=lambda wildcards: settings(evaluation_settings(wildcards.dataset, wildcards.inference == "_slowfast")),
    log:
        "logs/ablations/{variant}/{dataset}_linear{inference}.log",
    benchmark:
        "benchmarks/ablation_linear/{variant}_{dataset}{inference}.tsv"
    threads: res("linear")["threads"]
    resources:
        **slurm_resources("linear"),
    shell:
        "svt linear --checkpoint {input.checkpoint} --config {params.settings:q} --index {input.index} "
        "--root {input.root} --dataset {wildcards.dataset} --model {wildcards.variant} "
        "--work work/ablations/{wildcards.variant}/linear_{wildcards.dataset} --out {output} > {log} 2>&1"
