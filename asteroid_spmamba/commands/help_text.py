"""What the commands' ``--help`` shows that the library defines in modules importing torch (or
numpy, Lightning): copied here, so that building the command line imports none of them (the
commands import their library modules when they run). Each value is declared once in the library;
``tests/test_lazy_imports.py`` checks every copy against it, so a model added to the registry, a
renamed default or a reworded docstring fails a test until this table follows.
"""

# asteroid_spmamba.zoo.names(): the models' zoo names, in the order of the paper's table
ZOO_NAMES = (
    "convtasnet",
    "dprnn",
    "sudormrf",
    "afrcnn",
    "tdanet",
    "bsrnn",
    "tfgridnet",
    "spmamba",
)
# asteroid_spmamba.models.registry.bf16_labels(): what --precision auto runs in bfloat16 on GPUs
BF16_LABELS = ("SPMamba", "BSRNN", "A-FRCNN")

# asteroid_spmamba.inference
CHUNK_SECONDS = 8.0
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16")

# asteroid_spmamba.demo.DEMO_MODEL
DEMO_MODEL = "spmamba-small-kokoro2mix"
# asteroid_spmamba.loading.DEFAULT_MODELS: what separate uses when no model is named
DEFAULT_MODELS = {"cpu": "spmamba-small-kokoro2mix", "cuda": "spmamba-small-kokoro2mix"}

# asteroid_spmamba.data.speech_bank.VOICE_SOURCES
VOICE_SOURCES = ("kokoro", "espeak")

# asteroid_spmamba.benchmark: DTYPES, VARIANTS and the docstring's first paragraph
BENCHMARK_DTYPES = ("fp32", "tf32", "bf16")
BENCHMARK_VARIANTS = ("default", "plain", "fast", "compiled", "checkpointed", "graphed")
BENCHMARK_DESCRIPTION = (
    "Speed and memory benchmark of the zoo's models (beside the original SPMamba code, same "
    "weights, from a checkout)."
)

# asteroid_spmamba.convert_original: its docstring's first paragraph
CONVERT_DESCRIPTION = (
    "Build an :class:`~asteroid_spmamba.SPMamba` from an original SPMamba checkpoint."
)
