# The paper's eight tables: published numbers (svt/data/paper_tables.yaml) and this run's, side by side.


rule table:
    conda:
        CONDA_ENV
    input:
        metrics=table_metrics,
        sidecars=table_sidecars,
    output:
        csv=report(
            "results/table{number}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{number}"},
        ),
        md="results/table{number}.md",
    wildcard_constraints:
        number="[1-8]",
    params:
        scale=config["scale"],
    log:
        "logs/tables/table{number}.log",
    benchmark:
        "benchmarks/table/table{number}.tsv"
    threads: res("default")["threads"]
    resources:
        **slurm_resources("default"),
    shell:
        "svt table --number {wildcards.number} --metrics {input.metrics} --scale {params.scale} "
        "--out {output.csv} > {log} 2>&1"
