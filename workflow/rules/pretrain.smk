# SVT pretraining on Kinetics-400 (paper §4.1; pretraining.dataset picks another set), from the spatial
# initialisation. The work folder (checkpoints, metrics) is not an output: a failed or preempted job keeps it and
# the rerun resumes exactly.


if config["spatial_init"]["source"] == "image_pretraining":

    rule spatial_init:
        input:
            unpack(get_pretraining_data("the spatial initialisation (spatial_init.source: image_pretraining)")),
        output:
            "resources/weights/spatial_init.pth",
        log:
            "logs/spatial_init.log",
        benchmark:
            "benchmarks/spatial_init/image_pretraining.tsv"
        conda:
            CONDA_ENV
        threads: res("pretrain").threads
        resources:
            **slurm_resources("pretrain"),
        params:
            settings=job_settings(wf.image_pretraining_settings(config)),
            launch=launch("pretrain"),
        shell:
            "{params.launch} pretrain --config {params.settings:q} --index {input.index} --root {input.root} "
            "--work " + WORK["spatial_init"] + " --out {output} > {log} 2>&1"


rule pretrain:
    input:
        unpack(get_pretraining_data(f"SVT pretraining ({PRETRAINED})")),
        init=get_spatial_init(),
    output:
        teacher=PRETRAINED,
        meta=f"{PRETRAINED}.json",
    log:
        f"logs/pretrain/{PRETRAIN_RUN}.log",
    benchmark:
        f"benchmarks/pretrain/{PRETRAIN_RUN}.tsv"
    conda:
        CONDA_ENV
    threads: res("pretrain").threads
    resources:
        **slurm_resources("pretrain"),
    params:
        settings=job_settings(wf.pretraining_settings(config)),
        launch=launch("pretrain"),
        init=lambda wildcards, input: f"--init {input.init}" if input.init else "",
        work=WORK["pretrain"],
    shell:
        "{params.launch} pretrain --config {params.settings:q} --index {input.index} --root {input.root} "
        "--work {params.work} --out {output.teacher} {params.init} > {log} 2>&1"
