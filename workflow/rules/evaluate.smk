# Downstream evaluation (paper §4.1, Tables 1-3): linear probe (+ k-NN on the same features) and fine-tuning of
# the SVT model, and the baselines under the same protocol, with slow-fast inference.


rule linear:
    input:
        checkpoint=get_model_checkpoint,
        index="resources/index/{dataset}.parquet",
        root=get_dataset_root,
    output:
        linear="results/eval/{model}/{dataset}_linear.json",
        knn="results/eval/{model}/{dataset}_knn.json",
    log:
        "logs/linear/{model}/{dataset}.log",
    benchmark:
        "benchmarks/linear/{model}_{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("linear").threads
    resources:
        **slurm_resources("linear"),
    params:
        settings=lambda wildcards: job_settings(wf.evaluation_settings(config, wildcards.dataset)),
        checkpoint=lambda wildcards, input: input.checkpoint or "random",
    shell:
        "svt linear --checkpoint {params.checkpoint} --config {params.settings:q} --index {input.index} "
        "--root {input.root} --dataset {wildcards.dataset} --model {wildcards.model} "
        "--work work/linear/{wildcards.model}/{wildcards.dataset} --out {output.linear} --knn-out {output.knn} "
        "> {log} 2>&1"


rule finetune:
    input:
        checkpoint=get_model_checkpoint,
        index="resources/index/{dataset}.parquet",
        root=get_dataset_root,
    output:
        "results/eval/{model}/{dataset}_finetune.json",
    log:
        "logs/finetune/{model}/{dataset}.log",
    benchmark:
        "benchmarks/finetune/{model}_{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("finetune").threads
    resources:
        **slurm_resources("finetune"),
    params:
        settings=lambda wildcards: job_settings(wf.evaluation_settings(config, wildcards.dataset)),
        checkpoint=lambda wildcards, input: input.checkpoint or "random",
        launch=launch("finetune"),
    shell:
        "{params.launch} finetune --checkpoint {params.checkpoint} --config {params.settings:q} "
        "--index {input.index} --root {input.root} --dataset {wildcards.dataset} --model {wildcards.model} "
        "--work " + WORK["finetune"] + " --out {output} > {log} 2>&1"
