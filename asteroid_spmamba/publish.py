"""``asteroid-spmamba publish EXP_DIR ORG/NAME``: a model folder and its card
from an experiment folder.

Reads what :mod:`asteroid_spmamba.training` writes: ``best_model.pth`` (the model), ``conf.yml``
(training data and settings), ``train_summary.json`` (steps, epochs, wall time) and every
``eval*/summary.json`` (scores per test set, the folder name after ``eval_``
naming the set). Writes a
:func:`~asteroid_spmamba.hub.save_pretrained` folder whose card carries them (the results also as
a ``model-index``), and uploads it to the Hugging Face Hub only with ``--push``.
"""

import json
from pathlib import Path
from typing import Any, Optional, Union

import yaml

SCORES = ("si_snr_i", "sdr_i", "si_snr", "sdr")


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}).") from e


def read_experiment(exp_dir: Union[str, Path], dataset: Optional[str] = None) -> dict[str, Any]:
    """The model of ``exp_dir`` and the :func:`~asteroid_spmamba.card.make_model_card`
    arguments its files give.

    Raises:
        FileNotFoundError: no ``best_model.pth``.
        ValueError: an evaluation summary is of a model with another number of parameters.
    """
    from .loading import load_model

    exp_dir = Path(exp_dir)
    if not (exp_dir / "best_model.pth").is_file():
        raise FileNotFoundError(
            f"{exp_dir} has no best_model.pth: train first (asteroid-spmamba train), or give "
            "the experiment folder that holds it."
        )
    model = load_model(exp_dir / "best_model.pth")
    n_parameters = sum(p.numel() for p in model.parameters())
    conf = (
        yaml.safe_load((exp_dir / "conf.yml").read_text())
        if (exp_dir / "conf.yml").is_file()
        else {}
    )
    data, train_conf = conf.get("data") or {}, conf.get("training") or {}
    summary = _read_json(exp_dir / "train_summary.json") or {}

    train_dir = data.get("train_dir")
    details = [
        f"data.train_dir {train_dir}" if train_dir else None,
        f"{data['segment']} s segments" if data.get("segment") else None,
        "dynamic mixing" if data.get("dynamic_mixing") else None,
        f"speed perturbation {data['speed_perturb']}" if data.get("speed_perturb") else None,
    ]
    details = ", ".join(d for d in details if d)
    datasets = [dataset or train_dir or "not recorded (no conf.yml)"]
    training = {"steps": summary.get("global_step")}
    for key, value in (
        ("epochs", summary.get("epochs")),
        ("batch size", train_conf.get("batch_size")),
        ("precision", train_conf.get("precision")),
        (
            "wall time",
            f"{summary['total_wall_time_s'] / 60:.1f} min"
            if summary.get("total_wall_time_s")
            else None,
        ),
        (
            "best validation loss",
            None if summary.get("best_val_loss") is None else round(summary["best_val_loss"], 3),
        ),
        ("training data details", details or None),
    ):
        if value is not None:
            training[key] = value
    if summary.get("cut_short"):
        training["cut short"] = "yes: the time limit stopped training before its step budget"

    metrics, test_sets = {}, []
    for path in sorted(exp_dir.glob("eval*/summary.json")):
        scores = _read_json(path)
        if scores.get("n_parameters") not in (None, n_parameters):
            raise ValueError(
                f"{path} scores a model of {scores['n_parameters']:,} parameters, not the "
                f"{n_parameters:,} of best_model.pth: evaluate this model again or remove it."
            )
        name = path.parent.name[len("eval_") :] if path.parent.name.startswith("eval_") else "test"
        metrics[name] = {k: round(float(scores[k]), 2) for k in SCORES if k in scores}
        test_sets.append(
            f"{name}: {scores.get('n_utterances', '?')} mixtures of {scores.get('test_dir', '?')}"
        )
    description = (
        f"{type(model).__name__} ({n_parameters:,} parameters, {model.sample_rate:g} Hz) trained "
        f"with asteroid-spmamba's training (experiment folder {exp_dir.name})."
        + (
            f" Test sets: {'; '.join(test_sets)}."
            if test_sets
            else " It was not evaluated (no eval*/summary.json)."
        )
    )
    return {
        "model": model,
        "datasets": datasets,
        "training": training,
        "metrics": metrics or None,
        "description": description,
    }


def publish(
    exp_dir: Union[str, Path],
    repo_id: str,
    out_dir: Optional[Union[str, Path]] = None,
    push: bool = False,
    license: Optional[str] = None,
    dataset: Optional[str] = None,
) -> Path:
    """Write the save_pretrained folder of ``exp_dir`` for ``repo_id`` (default
    ``EXP_DIR/publish/ORG--NAME``) and, with ``push``, upload it. Returns the folder."""
    from huggingface_hub.utils import validate_repo_id

    from .hub import save_pretrained, upload_folder

    validate_repo_id(repo_id)
    if "/" not in repo_id:
        raise ValueError(
            "Give the Hub repository as ORG/NAME (a user or organisation "
            f"name first), not {repo_id!r}."
        )
    found = read_experiment(exp_dir, dataset)
    model = found.pop("model")
    out_dir = Path(out_dir) if out_dir else Path(exp_dir) / "publish" / repo_id.replace("/", "--")
    save_pretrained(model, out_dir, overwrite_card=True, repo_id=repo_id, license=license, **found)
    if push:
        print(f"Uploaded: {upload_folder(out_dir, repo_id)}")
    return out_dir
