# The real benchmarks (source: download): resumable, verified downloads, safe extraction into svt's canonical
# layouts (svt/download.py), then the index rule. SSv2 is placed by hand: when its job is planned, a dry run warns
# and a real run stops before any job, both naming what to place where. Weights: the DINO spatial initialisation
# and the authors' released SVT teacher (the `release` target).


rule download:
    input:
        get_placed_by_hand,
    output:
        directory("resources/data/{dataset}"),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "benchmarks/download/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: res("data").threads
    resources:
        **slurm_resources("data"),
    params:
        settings=lambda wildcards: job_settings(config["downloads"][wildcards.dataset]),
        workers=config.get("downloads", {}).get("workers", 4),
    shell:
        "svt download --dataset {wildcards.dataset} --config {params.settings:q} "
        "--work resources/downloads/{wildcards.dataset} --workers {params.workers} --out {output} > {log} 2>&1"


if config["spatial_init"]["source"] == "download":

    rule download_spatial_init:
        output:
            "resources/weights/spatial_init.pth",
        log:
            "logs/download/spatial_init.log",
        benchmark:
            "benchmarks/download/spatial_init.tsv"
        conda:
            CONDA_ENV
        threads: res("default").threads
        resources:
            **slurm_resources("default"),
        params:
            settings=job_settings(config["downloads"]["spatial_init"]),
        shell:
            "svt download --dataset spatial_init --config {params.settings:q} --out {output} > {log} 2>&1"


rule download_release:
    output:
        "resources/weights/release.pth",
    log:
        "logs/download/release.log",
    benchmark:
        "benchmarks/download/release.tsv"
    conda:
        CONDA_ENV
    threads: res("default").threads
    resources:
        **slurm_resources("default"),
    params:
        settings=lambda wildcards: job_settings(get_release_download()),
    shell:
        "svt download --dataset release --config {params.settings:q} --out {output} > {log} 2>&1"
