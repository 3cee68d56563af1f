"""Helpers for the Models-as-a-Service workshop: one module per concern.

    settings     one settings object (paths, platform, timeouts)
    cpu          what this CPU can do: its class (AVX2 / AVX-512), vLLM's kernels for it, MAAS_CPU_ISA
    errors       the exception hierarchy; messages say what to do next
    models       the workshop's tiny model: task data, recipe, training, cache
    platform     where models run: LocalPlatform (vLLM processes), more to come
    processes    starting and stopping server processes, ports, logs
    client       the openai client pointed at a deployment
    loadtest     naive transformers serving against vLLM, same load
    bench        GuideLLM sweeps and their results
    quantize     LLM Compressor recipes and checkpoint sizes
    evaluate     lm-eval on the workshop's own tasks, offline
    confidence   how sure a measured accuracy or recovery is (intervals, "within noise")
    plots        every plot the labs draw
    checks       check cells for the labs
    results      each lab's key figures (JSON)
    labgen       labs/ generated from solutions/
    generated    committed generated files: find stale ones, rewrite them
    kserve       KServe objects for the cluster, validated offline
    modelcar     ModelCar OCI images: build, push, pull
    registry     the local OCI registry with a login
    secretfiles  secret files written private (0600) from the first byte
    catalog      validated models as data: memory, L4 fit, filter and rank
    company      Parasol's demand, defined once: Lab 3's sizing and Lab 6's synthetic month
    capacity     from a GuideLLM sweep to the GPUs a whole company needs
    gateway      the MaaS gateway: PostgreSQL, key store and ledger, LiteLLM and its plugin
    maas         the gateway for the notebooks: start it, the portal, the admin console
    prices       the one price table (catalog/prices.yaml): the gateway's and the chargeback's
    usage        usage analysis and chargeback from the ledger (pandas)
    synthetic    a realistic synthetic month of a 19,000-employee company
    runlabs      run the notebooks headless (papermill)
    labtimes     each lab's time (measured machine time, estimated reading) in README and the headers
    reference    instructor reference outputs: executed labs as HTML, secrets stripped
    environment  the environment check of Lab 0
    cli          python -m helpers ...
"""

__version__ = "0.1.0"

from . import cpu as _cpu

_cpu.apply_to_this_process()  # MAAS_CPU_ISA=avx2: this process and its children take the AVX2 kernels
