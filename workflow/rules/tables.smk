# The paper's eight tables: published numbers (svt/data/paper_tables.yaml) and this run's, side by side.


def table_metrics(wildcards):
    number = int(wildcards.number)
    if number <= 3:
        table = f"table{number}"
        protocols = ["linear", "finetune"]
        files = [f"results/eval/svt/{ds}_{p}.json" for ds in EVAL_DATASETS[table] for p in protocols]
        files += [f"results/eval/{b}/{ds}_linear.json" for b in config["evaluation"]["baselines"]
                  for ds in EVAL_DATASETS[table]]
        return files
    variants = config["ablations"]["tables"][f"table{number}"]
    suffixes = ["", "_slowfast"] if number == 8 else [""]
    return [f"results/ablations/{v}/{ds}_linear{s}.json" for v in variants for ds in ABLATION_DATASETS
            for s in suffixes]


def table_sidecars(wildcards):
    """Tables read each run's pretraining settings from its checkpoint's .json sidecar."""
    number = int(wildcards.number)
    if number <= 3:
        return ["results/pretrain/svt.pth.json"]
    return [f"results/ablations/{v}/teacher.pth.json" for v in config["ablations"]["tables"][f"table{number}"]]


rule table:
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
    resources:
        **slurm_resources("default"),
    shell:
        "svt table --number {wildcards.number} --metrics {input.metrics} --scale {params.scale} "
        "--out {output.csv} > {log} 2>&1"
