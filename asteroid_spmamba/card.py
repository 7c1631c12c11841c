"""The model card (``README.md`` of a saved model): Hub metadata with a ``model-index`` of the
results, training data and steps, usage, configuration, the paper and the licence."""

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData, constants

from .checkpoints import model_config

CARD_NAME = constants.REPOCARD_NAME  # "README.md"
CARD_TAGS = ("asteroid", "audio", "audio-to-audio", "speech-separation")
PAPER = (
    'K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you '
    'need in speech separation", '
    "[arXiv:2404.02063](https://arxiv.org/abs/2404.02063), 2024"
)
PAPER_TAG = "arxiv:2404.02063"  # the Hub links the paper page from this tag
DEFAULT_LICENSE = "mit"  # the package's licence, for cards whose caller names none


def _import_line(model: torch.nn.Module) -> str:
    name = type(model).__name__
    module = type(model).__module__
    if module.startswith("asteroid_spmamba"):
        return f"from asteroid_spmamba.models import {name}"
    if module.startswith("asteroid."):
        return f"from asteroid.models import {name}"
    return f"from {module} import {name}"


def _format_metric(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _results_by_test_set(metrics: Optional[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: value}`` (one test set) or ``{test set: {metric: value}}`` -> the second form."""
    if not metrics:
        return {}
    if all(isinstance(v, Mapping) for v in metrics.values()):
        return {str(k): dict(v) for k, v in metrics.items()}
    return {"test set": dict(metrics)}


def _eval_results(results: Mapping[str, Mapping[str, Any]]) -> list:
    out = []
    for test_set, values in results.items():
        for metric, value in values.items():
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                out.append(
                    EvalResult(
                        task_type="audio-to-audio",
                        task_name="Speech separation",
                        dataset_name=test_set,
                        dataset_type=test_set.lower().replace(" ", "-"),
                        metric_type=metric,
                        metric_value=value,
                    )
                )
    return out


def make_model_card(
    model: torch.nn.Module,
    repo_id: Optional[str] = None,
    datasets: Optional[Union[str, Iterable[str]]] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    license: Optional[str] = None,
    description: Optional[str] = None,
    language: Optional[Union[str, list[str]]] = None,
    tags: Optional[Iterable[str]] = None,
    training: Optional[Mapping[str, Any]] = None,
) -> ModelCard:
    """Model card (``README.md``): Hub metadata with a ``model-index`` of the results, training data
    and steps, results, usage, configuration, the paper and the licence.

    Args:
        model: the model.
        repo_id: Hub id shown in the usage snippet (``ORG/NAME`` placeholder if unknown).
        datasets: training data (names or Hub dataset ids), e.g. ``"Libri2Mix"``.
        metrics: ``{metric: value}`` (e.g. ``{"si_sdr": 15.3}``), or ``{test set: {metric: value}}``
            for several test sets; shown as a table and in the ``model-index``.
        license: license id (e.g. ``"cc-by-sa-4.0"``; default ``"mit"``, the package's).
        description: free text placed under the title.
        language: spoken language(s) of the training data.
        tags: extra tags.
        training: how it was trained, ``{"steps": 1954, "epochs": 14, ...}``, listed in the card.
    """
    name = type(model).__name__
    datasets = [datasets] if isinstance(datasets, str) else list(datasets or [])
    results = _results_by_test_set(metrics)
    info = getattr(type(model), "_hub_mixin_info", None)
    base = info.model_card_data.to_dict() if info is not None else {}
    license = license or base.get("license") or DEFAULT_LICENSE
    all_tags = sorted(
        set(CARD_TAGS) | {name.lower(), PAPER_TAG} | set(tags or []) | set(base.get("tags") or [])
    )
    repo = repo_id or "ORG/NAME"
    eval_results = _eval_results(results)
    card_data = ModelCardData(
        library_name="asteroid",
        pipeline_tag="audio-to-audio",
        tags=all_tags,
        datasets=datasets or None,
        license=license,
        language=language,
        metrics=sorted({m for values in results.values() for m in values}) or None,
        model_name=repo_id or name,
        eval_results=eval_results or None,
    )
    config = model_config(model)
    n_src = config["model_args"].get("n_src", getattr(model, "n_src", None))
    rate = config["sample_rate"]
    training = dict(training or {})
    steps = training.pop("steps", None)
    lines = [
        f"# {name}" + (f" ({', '.join(datasets)})" if datasets else ""),
        "",
        description
        or (
            f"A {name} speech separation model"
            + (f" for {n_src} speakers" if n_src else "")
            + (f" at {rate:g} Hz" if isinstance(rate, (int, float)) else "")
            + ", for the [Asteroid](https://github.com/asteroid-team/asteroid) toolkit, saved with "
            f"asteroid-spmamba {config['asteroid_spmamba_version']}."
        ),
        "",
        "## Training",
        "",
        "Data: " + ("; ".join(datasets) if datasets else "not specified") + ".",
        "",
        f"- steps: {steps if steps is not None else 'not recorded'}",
        *[f"- {k}: {v}" for k, v in training.items()],
        "",
        "## Evaluation results",
        "",
    ]
    if not results:
        lines += ["No evaluation results were recorded with this model.", ""]
    elif list(results) == ["test set"]:
        lines += ["| Metric | Value |", "| --- | --- |"]
        lines += [f"| {k} | {_format_metric(v)} |" for k, v in results["test set"].items()]
        lines.append("")
    else:
        lines += ["| Test set | Metric | Value |", "| --- | --- | --- |"]
        lines += [
            f"| {t} | {k} | {_format_metric(v)} |"
            for t, values in results.items()
            for k, v in values.items()
        ]
        lines.append("")
    lines += [
        "## Usage",
        "",
        "```python",
        _import_line(model),
        "from asteroid_spmamba import separate_file",
        "",
        f'model = {name}.from_pretrained("{repo}")',
        'estimates, rate = separate_file("mixture.wav", model=model, chunk_seconds=8.0)',
        "```",
        "",
        "or from the command line:",
        "",
        "```bash",
        f"asteroid-spmamba separate {repo} mixture.wav -o separated/",
        "```",
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(config["model_args"], indent=2),
        "```",
        "",
        "## Paper",
        "",
        PAPER
        + ("." if name == "SPMamba" else f"; {name} is one of the baselines of its comparison."),
        "",
        "## Licence",
        "",
        f"`{license}`",
        "",
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines)
    return ModelCard(content)
