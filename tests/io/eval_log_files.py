"""Evaluation logs for the tests, written to the tools' documented schemas.

* lm-evaluation-harness ``--log_samples``: ``samples_<task>_<date>.jsonl``, one record per
  document as ``lm_eval.evaluator.evaluate`` writes it (``doc_id``, ``doc``, ``target``,
  ``arguments``, ``resps``, ``filtered_resps``, ``filter``, ``metrics``, the three
  sha256 hashes, one key per metric);
* Inspect ``.eval`` (a zip of ``header.json``, ``samples/<id>_epoch_<n>.json``,
  ``summaries.json``) and ``.json`` (``{"version", "status", "eval", ..., "samples"}``), as
  ``inspect_ai.log`` defines ``EvalLog`` and ``EvalSample``; deflate-compressed, as
  inspect-ai wrote them before it moved to Zstandard;
* HELM run folders: ``per_instance_stats.json``, ``display_predictions.json``,
  ``instances.json`` as ``helm.benchmark.presentation.run_display`` writes them.

Each ``*_pair`` helper returns the raw records of an old and a new run that share their
items and differ in which items each gets right, for an exact check of the flip rates.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

DATE = "2024-05-01T10-00-00.000001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def correctness(n: int, seed: int, p_old: float = 0.7, p_new: float = 0.75):
    """Correlated right/wrong per item for an old and a new model."""
    rng = np.random.default_rng(seed)
    old = rng.random(n) < p_old
    keep = rng.random(n) < 0.85
    new = np.where(keep, old, rng.random(n) < p_new)
    return old, new


# -- lm-evaluation-harness ------------------------------------------------------------------


def lm_eval_record(task: str, doc_id: int, acc: float, acc_norm: float, **extra: Any) -> dict:
    doc = {"question": f"{task} question {doc_id}?", "choices": ["A", "B", "C", "D"], "gold": 2}
    prompt = f"Question: {doc['question']}\nAnswer:"
    target = "C"
    record = {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": [[prompt, f" {c}"] for c in doc["choices"]],
        "resps": [[[-1.5 - i, False]] for i in range(4)],
        "filtered_resps": [[-1.5 - i, False] for i in range(4)],
        "filter": "none",
        "metrics": ["acc", "acc_norm"],
        "doc_hash": sha(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": sha(prompt),
        "target_hash": sha(target),
        "acc": acc,
        "acc_norm": acc_norm,
    }
    record.update(extra)
    return record


def lm_eval_pair(sizes: dict[str, int], seed: int = 0):
    """``{task: [record, ...]}`` of an old and a new run over the same documents."""
    old: dict[str, list[dict]] = {}
    new: dict[str, list[dict]] = {}
    for t, (task, n) in enumerate(sizes.items()):
        right_old, right_new = correctness(n, seed + t)
        norm_old, norm_new = correctness(n, seed + 100 + t)
        old[task] = [
            lm_eval_record(task, i, float(right_old[i]), float(norm_old[i])) for i in range(n)
        ]
        new[task] = [
            lm_eval_record(task, i, float(right_new[i]), float(norm_new[i])) for i in range(n)
        ]
    return old, new


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_lm_eval(folder: Path, runs: dict[str, list[dict]], date: str = DATE) -> Path:
    """An lm-eval output folder: ``folder/<model>/samples_<task>_<date>.jsonl``."""
    model = folder / "org__model"
    for task, records in runs.items():
        write_jsonl(model / f"samples_{task}_{date}.jsonl", records)
    (model / f"results_{date}.json").write_text(json.dumps({"results": {}}), encoding="utf-8")
    return folder


def direct_nfr(old: dict[str, list[dict]], new: dict[str, list[dict]], metric: str = "acc"):
    """NFR, PFR and n straight from the raw records, joined on (task, doc_id)."""
    n = nf = pf = 0
    for task, records in new.items():
        before = {r["doc_id"]: r for r in old.get(task, [])}
        for r in records:
            o = before.get(r["doc_id"])
            if o is None or o["doc_hash"] != r["doc_hash"]:
                continue
            n += 1
            nf += o[metric] == 1 and r[metric] == 0
            pf += o[metric] == 0 and r[metric] == 1
    return nf / n, pf / n, n


# -- Inspect --------------------------------------------------------------------------------


def inspect_sample(
    sample_id: int | str,
    epoch: int,
    value: object,
    *,
    scorer: str = "match",
    completion: str = "42",
    target: str = "42",
    error: str | None = None,
) -> dict:
    sample = {
        "id": sample_id,
        "epoch": epoch,
        "input": [{"role": "user", "content": f"What is item {sample_id}?", "source": "input"}],
        "target": target,
        "messages": [],
        "output": {
            "model": "mockllm/model",
            "choices": [
                {"message": {"role": "assistant", "content": completion}, "stop_reason": "stop"}
            ],
            "completion": completion,
        },
        "scores": None
        if error
        else {scorer: {"value": value, "answer": completion, "explanation": completion}},
        "metadata": {},
        "store": {},
        "events": [],
        "model_usage": {},
    }
    if error:
        sample["error"] = {"message": error, "traceback": "", "traceback_ansi": ""}
    return sample


def inspect_header(task: str, created: str = "2024-05-01T10:00:00+00:00", status="success"):
    return {
        "version": 2,
        "status": status,
        "eval": {
            "eval_id": sha(task + created)[:22],
            "run_id": sha(created)[:22],
            "created": created,
            "task": task,
            "task_id": sha(task)[:22],
            "task_version": 0,
            "dataset": {"name": task, "samples": 0},
            "model": "mockllm/model",
            "config": {"epochs": 1},
            "packages": {"inspect_ai": "0.3.100"},
        },
        "plan": {"name": "plan", "steps": [{"solver": "generate", "params": {}}]},
        "results": {"total_samples": 0, "completed_samples": 0, "scores": []},
        "stats": {"started_at": created, "completed_at": created, "model_usage": {}},
    }


def write_inspect_eval(path: Path, task: str, samples: list[dict], **header: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_journal/start.json", json.dumps(inspect_header(task, **header)))
        for s in samples:
            archive.writestr(f"samples/{s['id']}_epoch_{s['epoch']}.json", json.dumps(s))
        summaries = [
            {k: s[k] for k in ("id", "epoch", "input", "target", "scores")} for s in samples
        ]
        archive.writestr("summaries.json", json.dumps(summaries))
        archive.writestr("header.json", json.dumps(inspect_header(task, **header)))
    return path


def write_inspect_json(path: Path, task: str, samples: list[dict], **header: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    log = {**inspect_header(task, **header), "samples": samples}
    path.write_text(json.dumps(log, indent=2), encoding="utf-8")
    return path


def inspect_pair(n: int, seed: int = 0, epochs: int = 1):
    """Samples of an old and a new run (``C``/``I`` values)."""
    old, new = [], []
    right_old, right_new = correctness(n * epochs, seed)
    for i in range(n):
        for e in range(1, epochs + 1):
            j = i * epochs + e - 1
            old.append(inspect_sample(i, e, "C" if right_old[j] else "I"))
            new.append(inspect_sample(i, e, "C" if right_new[j] else "I"))
    return old, new


def direct_inspect_nfr(old: list[dict], new: list[dict], scorer: str = "match"):
    before = {(s["id"], s["epoch"]): s for s in old}
    n = nf = 0
    for s in new:
        o = before.get((s["id"], s["epoch"]))
        if o is None or o.get("error") or s.get("error"):
            continue
        n += 1
        nf += o["scores"][scorer]["value"] == "C" and s["scores"][scorer]["value"] != "C"
    return nf / n, n


# -- HELM -----------------------------------------------------------------------------------


def helm_entry(instance_id: str, em: float, *, trial: int = 0, perturbation=None) -> dict:
    entry = {
        "instance_id": instance_id,
        "train_trial_index": trial,
        "stats": [
            {
                "name": {"name": "exact_match", "split": "test"},
                "count": 1,
                "sum": em,
                "sum_squared": em * em,
                "min": em,
                "max": em,
                "mean": em,
                "variance": 0.0,
                "stddev": 0.0,
            },
            {
                "name": {"name": "num_output_tokens", "split": "test"},
                "count": 1,
                "sum": 3.0,
                "mean": 3.0,
            },
        ],
    }
    if perturbation is not None:
        entry["perturbation"] = perturbation
    return entry


def write_helm_run(folder: Path, entries: list[dict], texts: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "per_instance_stats.json").write_text(json.dumps(entries), encoding="utf-8")
    (folder / "run_spec.json").write_text(json.dumps({"name": folder.name}), encoding="utf-8")
    if texts:
        predictions = [
            {
                "instance_id": e["instance_id"],
                "train_trial_index": e["train_trial_index"],
                "predicted_text": f"answer to {e['instance_id']}",
                "stats": {"exact_match": e["stats"][0]["mean"]},
                **({"perturbation": e["perturbation"]} if "perturbation" in e else {}),
            }
            for e in entries
        ]
        (folder / "display_predictions.json").write_text(json.dumps(predictions), "utf-8")
        instances = [
            {
                "id": e["instance_id"],
                "input": {"text": f"<b>question</b> {e['instance_id']}"},
                "references": [
                    {"output": {"text": "right"}, "tags": ["correct"]},
                    {"output": {"text": "wrong"}, "tags": []},
                ],
                "split": "test",
            }
            for e in entries
            if "perturbation" not in e and e["train_trial_index"] == 0
        ]
        (folder / "instances.json").write_text(json.dumps(instances), "utf-8")
    return folder


def helm_pair(n: int, seed: int = 0):
    right_old, right_new = correctness(n, seed)
    old = [helm_entry(f"id{i}", float(right_old[i])) for i in range(n)]
    new = [helm_entry(f"id{i}", float(right_new[i])) for i in range(n)]
    return old, new
