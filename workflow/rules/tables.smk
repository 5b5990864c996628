# The paper's eight tables: published numbers (svt/published/paper_tables.yaml) and this run's, side by side, every
# reproduced number with its 95% interval and its comparisons (svt/tables.py); disabled datasets read "not run".
# The `release` target's Tables 1-3 evaluate the authors' released teacher instead of our pretraining.


rule table:
    input:
        metrics=get_table_metrics,
        sidecars=get_table_sidecars,
    output:
        csv=report(
            "results/table{number}.csv",
            caption="../report/table.rst",
            category="Table data",
            labels={"table": "{number}"},
        ),
        md="results/table{number}.md",
        html=report(
            "results/table{number}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{number}"},
        ),
    log:
        "logs/tables/table{number}.log",
    benchmark:
        "benchmarks/table/table{number}.tsv"
    wildcard_constraints:
        number="[1-8]",
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        scale=config["scale"],
        not_run=" ".join(DISABLED),
        baselines=" ".join(config["evaluation"]["baselines"]),
    shell:
        "svt table --number {wildcards.number} --metrics {input.metrics} --scale {params.scale} "
        "--not-run {params.not_run} --baselines {params.baselines} --out {output.csv} > {log} 2>&1"


rule release_table:
    input:
        get_release_metrics,
    output:
        csv=report(
            "results/release/table{number}.csv",
            caption="../report/release_table.rst",
            category="Table data (released weights)",
            labels={"table": "{number}"},
        ),
        md="results/release/table{number}.md",
        html=report(
            "results/release/table{number}.html",
            caption="../report/release_table.rst",
            category="Tables (released weights)",
            labels={"table": "{number}"},
        ),
    log:
        "logs/tables/release_table{number}.log",
    benchmark:
        "benchmarks/release_table/table{number}.tsv"
    wildcard_constraints:
        number="[1-3]",
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        scale=config["scale"],
        not_run=" ".join(DISABLED),
    shell:
        "svt table --released --number {wildcards.number} --metrics {input} --scale {params.scale} "
        "--not-run {params.not_run} --out {output.csv} > {log} 2>&1"
