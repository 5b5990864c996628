# Downstream evaluation (paper §4.1, Tables 1-3): linear probe (+ k-NN on the same features) and fine-tuning of
# the SVT model, and the baselines under the same protocol, with slow-fast inference.


rule linear:
    conda:
        CONDA_ENV
    input:
        checkpoint=model_checkpoint,
        index="resources/index/{dataset}.parquet",
        root=lambda wildcards: dataset_root(wildcards.dataset),
    output:
        linear="results/eval/{model}/{dataset}_linear.json",
        knn="results/eval/{model}/{dataset}_knn.json",
    params:
        settings=lambda wildcards: settings(evaluation_settings(wildcards.dataset)),
        checkpoint=lambda wildcards, input: input.checkpoint or "random",
    log:
        "logs/linear/{model}/{dataset}.log",
    benchmark:
        "benchmarks/linear/{model}_{dataset}.tsv"
    threads: res("linear")["threads"]
    resources:
        **slurm_resources("linear"),
    shell:
        "svt linear --checkpoint {params.checkpoint} --config {params.settings:q} --index {input.index} "
        "--root {input.root} --dataset {wildcards.dataset} --model {wildcards.model} "
        "--work work/linear/{wildcards.model}/{wildcards.dataset} --out {output.linear} --knn-out {output.knn} "
        "> {log} 2>&1"


rule finetune:
    conda:
        CONDA_ENV
    input:
        checkpoint=model_checkpoint,
        index="resources/index/{dataset}.parquet",
        root=lambda wildcards: dataset_root(wildcards.dataset),
    output:
        "results/eval/{model}/{dataset}_finetune.json",
    params:
        settings=lambda wildcards: settings(evaluation_settings(wildcards.dataset)),
        checkpoint=lambda wildcards, input: input.checkpoint or "random",
        launch=launch("finetune"),
    log:
        "logs/finetune/{model}/{dataset}.log",
    benchmark:
        "benchmarks/finetune/{model}_{dataset}.tsv"
    threads: res("finetune")["threads"]
    resources:
        **slurm_resources("finetune"),
    shell:
        "{params.launch} finetune --checkpoint {params.checkpoint} --config {params.settings:q} "
        "--index {input.index} --root {input.root} --dataset {wildcards.dataset} --model {wildcards.model} "
        "--work work/finetune/{wildcards.model}/{wildcards.dataset} --out {output} > {log} 2>&1"
