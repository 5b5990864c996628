# Ablations (paper §4.3, Tables 4-8): each variant = pretraining on the fixed K400 subset with one change, then
# linear evaluation on UCF-101 and HMDB-51 with a single (slow) view, as the paper's ablation rows; Table 8 adds
# the baseline with slow-fast inference. The random-init model evaluated the same way (results/ablations/random/)
# is the reference the tables compare every row with. One variant reruns alone:
#   snakemake results/ablations/<variant>/ucf101_linear.json


rule ablation_pretrain:
    input:
        unpack(get_pretraining_data("the ablations' pretraining", subset="_ablation")),
        init=get_spatial_init(),
    output:
        teacher="results/ablations/{variant}/teacher.pth",
        meta="results/ablations/{variant}/teacher.pth.json",
    log:
        "logs/ablations/{variant}/pretrain.log",
    benchmark:
        "benchmarks/ablation_pretrain/{variant}.tsv"
    wildcard_constraints:
        variant="|".join(config["ablations"]["variants"]),
    conda:
        CONDA_ENV
    threads: res("pretrain").threads
    resources:
        **slurm_resources("pretrain"),
    params:
        settings=lambda wildcards: job_settings(wf.pretraining_settings(config, wildcards.variant)),
        launch=launch("pretrain"),
        init=lambda wildcards, input: f"--init {input.init}" if input.init else "",
    shell:
        "{params.launch} pretrain --config {params.settings:q} --index {input.index} --root {input.root} "
        "--work " + WORK["ablation"] + " --out {output.teacher} {params.init} > {log} 2>&1"


rule ablation_linear:
    input:
        checkpoint=get_ablation_checkpoint,
        index="resources/index/{dataset}.parquet",
        root=get_dataset_root,
    output:
        "results/ablations/{variant}/{dataset}_linear{inference}.json",
    log:
        "logs/ablations/{variant}/{dataset}_linear{inference}.log",
    benchmark:
        "benchmarks/ablation_linear/{variant}_{dataset}{inference}.tsv"
    wildcard_constraints:
        inference="|_slowfast",
        # `random`: the random-init model under the ablation protocol, the reference of every ablation row
        variant="|".join([*config["ablations"]["variants"], "random"]),
    conda:
        CONDA_ENV
    threads: res("linear").threads
    resources:
        **slurm_resources("linear"),
    params:
        settings=lambda wildcards: job_settings(
            wf.evaluation_settings(config, wildcards.dataset, wildcards.inference == "_slowfast")
        ),
        checkpoint=lambda wildcards, input: input.checkpoint or "random",
    shell:
        "svt linear --checkpoint {params.checkpoint} --config {params.settings:q} --index {input.index} "
        "--root {input.root} --dataset {wildcards.dataset} --model {wildcards.variant} "
        "--work work/ablations/{wildcards.variant}/linear_{wildcards.dataset} --out {output} > {log} 2>&1"
