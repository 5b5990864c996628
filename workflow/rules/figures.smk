# Figure 3 (attention), the reproduction delta of every table cell, the training curves and the compute table.


rule attention_figure:
    input:
        unpack(get_attention_data),
        spatial_init=get_spatial_init(),
        svt=PRETRAINED,
    output:
        png=report(
            "results/figures/attention.png",
            caption="../report/attention.rst",
            category="Figures",
        ),
        pdf="results/figures/attention.pdf",
    log:
        "logs/figures/attention.log",
    benchmark:
        "benchmarks/attention_figure/attention.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        settings=lambda wildcards: job_settings(wf.evaluation_settings(config, config["figures"]["attention_dataset"])),
        init=lambda wildcards, input: input.spatial_init or "random",
        init_label=("spatial init" if config["spatial_init"]["source"] != "none" else "random init"),
    shell:
        "svt attention --compare {params.init_label:q} {params.init} --compare SVT {input.svt} "
        "--config {params.settings:q} --index {input.index} --root {input.root} --out {output.png} > {log} 2>&1"


rule reproduction_delta:
    input:
        expand("results/table{number}.csv", number=range(1, 9)),
    output:
        png=report(
            "results/figures/reproduction_delta.png",
            caption="../report/delta.rst",
            category="Figures",
        ),
        pdf="results/figures/reproduction_delta.pdf",
        cells=report(
            "results/figures/reproduction_delta.csv",
            caption="../report/delta.rst",
            category="Figures",
        ),
    log:
        "logs/figures/reproduction_delta.log",
    benchmark:
        "benchmarks/reproduction_delta/delta.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    shell:
        "svt delta --tables {input} --out {output.png} > {log} 2>&1"


rule training_curves:
    input:
        [done for done, _ in TRAINING_RUNS.values()],
    output:
        report(
            expand("results/figures/curves/{run}.png", run=TRAINING_RUNS),
            caption="../report/curves.rst",
            category="Training curves",
        ),
    log:
        "logs/figures/training_curves.log",
    benchmark:
        "benchmarks/training_curves/curves.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        runs=" ".join(f"--run {label}={log}" for label, (_, log) in TRAINING_RUNS.items()),
    shell:
        "svt curves {params.runs} --out-dir results/figures/curves > {log} 2>&1"


rule compute_table:
    input:
        expand("results/table{number}.csv", number=range(1, 9)),
        "results/figures/attention.png",
        "results/figures/reproduction_delta.png",
        expand("results/figures/curves/{run}.png", run=TRAINING_RUNS),
    output:
        report("results/compute.csv", caption="../report/compute.rst", category="Compute"),
    log:
        "logs/compute_table.log",
    benchmark:
        "benchmarks/compute.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        gpus=" ".join(
            f"{rule}={res(kind).gpus}"
            for rule, kind in [
                ("pretrain", "pretrain"),
                ("ablation_pretrain", "pretrain"),
                ("spatial_init", "pretrain"),
                ("finetune", "finetune"),
                ("linear", "linear"),
                ("ablation_linear", "linear"),
            ]
        ),
        sidecars=lambda wildcards: " ".join(
            [f"--sidecar benchmarks/pretrain/{PRETRAIN_RUN}.tsv {PRETRAINED}.json"]
            + [
                f"--sidecar benchmarks/ablation_pretrain/{v}.tsv results/ablations/{v}/teacher.pth.json"
                for v in sorted({v for vs in config["ablations"]["tables"].values() for v in vs})
            ]
        ),
    shell:
        "svt compute --benchmarks benchmarks/*/*.tsv --gpus {params.gpus} {params.sidecars} --out {output} "
        "> {log} 2>&1"
