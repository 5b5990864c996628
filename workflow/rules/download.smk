# The real benchmarks (source: download): resumable, verified downloads, safe extraction into svt's canonical
# layouts (svt/download.py), then the index rule. SSv2 is placed by hand: when its job is planned, a dry run warns
# and a real run stops before any job, both naming what to place where. Weights: the DINO spatial initialisation
# and the authors' released SVT teacher (the `release` target).


rule download:
    conda:
        CONDA_ENV
    input:
        placed_by_hand,
    output:
        directory("resources/data/{dataset}"),
    params:
        settings=lambda wildcards: settings(config["downloads"][wildcards.dataset]),
        workers=config.get("downloads", {}).get("workers", 4),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "benchmarks/download/{dataset}.tsv"
    threads: res("data")["threads"]
    resources:
        **slurm_resources("data"),
    shell:
        "svt download --dataset {wildcards.dataset} --config {params.settings:q} "
        "--work resources/downloads/{wildcards.dataset} --workers {params.workers} --out {output} > {log} 2>&1"


if config["spatial_init"]["source"] == "download":

    rule download_spatial_init:
        conda:
            CONDA_ENV
        output:
            "resources/weights/spatial_init.pth",
        params:
            settings=settings(config["downloads"]["spatial_init"]),
        log:
            "logs/download/spatial_init.log",
        benchmark:
            "benchmarks/download/spatial_init.tsv"
        threads: res("default")["threads"]
        resources:
            **slurm_resources("default"),
        shell:
            "svt download --dataset spatial_init --config {params.settings:q} --out {output} > {log} 2>&1"


rule download_release:
    conda:
        CONDA_ENV
    output:
        "resources/weights/release.pth",
    params:
        settings=lambda wildcards: settings(release_download()),
    log:
        "logs/download/release.log",
    benchmark:
        "benchmarks/download/release.tsv"
    threads: res("default")["threads"]
    resources:
        **slurm_resources("default"),
    shell:
        "svt download --dataset release --config {params.settings:q} --out {output} > {log} 2>&1"
