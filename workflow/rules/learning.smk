# The learning check (config/learning.yaml, docs/demo-findings.md): does SVT pretraining learn motion? SVT
# against its controls on the motion benchmark (SSv2: classes that differ only in motion), the teacher's mutual
# information over pretraining and the features' time-reversal sensitivity, in results/learning.md.


LEARNING_SET = "ssv2"


rule learning:
    input:
        get_learning_metrics,
        get_learning_checkpoints,
        init=get_spatial_init(),
        index=f"resources/index/{LEARNING_SET}.parquet",
        root=lambda wildcards: get_dataset_root(SimpleNamespace(dataset=LEARNING_SET)),
    output:
        md=report("results/learning.md", caption="../report/learning.rst", category="Learning check"),
        json="results/learning.json",
    log:
        "logs/learning.log",
    benchmark:
        "benchmarks/learning/learning.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        settings=lambda wildcards: job_settings(wf.evaluation_settings(config, LEARNING_SET)),
        models=lambda wildcards: " ".join(
            f"--model {m}={(get_model_checkpoint(SimpleNamespace(model=m)) or ['random'])[0]}"
            for m in get_learning_models(wildcards)
        ),
        log=metrics_log("pretrain"),
        init=lambda wildcards, input: f"--init {input.init}" if input.init else "",
    shell:
        "svt learning --dataset " + LEARNING_SET + " {params.models} --log {params.log} "
        "{params.init} --config {params.settings:q} --index {input.index} --root {input.root} --out {output.md} > {log} 2>&1"
