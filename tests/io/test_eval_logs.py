"""Evaluation-log readers and the pairing of two runs: exact flip rates against the raw records."""

from __future__ import annotations

import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError, MissingExtraError
from graceful.io.eval_logs import (
    EVAL_LOG_FORMATS,
    detect_eval_log,
    load_eval_comparison,
    read_eval_log,
)
from graceful.release import Gate, compare_eval_logs
from tests.io.eval_log_files import (
    correctness,
    direct_inspect_nfr,
    direct_nfr,
    helm_entry,
    helm_pair,
    inspect_pair,
    inspect_sample,
    lm_eval_pair,
    lm_eval_record,
    write_helm_run,
    write_inspect_eval,
    write_inspect_json,
    write_jsonl,
    write_lm_eval,
)
from tests.io.inspect_mock import right

DATA = Path(__file__).parent / "data" / "inspect"


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    return result, [str(w.message) for w in caught]


# -- exact flip rates on generated pairs of a few thousand items --------------------------------


def test_lm_eval_folders_give_the_flip_rates_of_the_raw_records(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 2500, "hellaswag": 1500}, seed=1)
    result, notes = _quiet(
        compare_eval_logs, write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    )
    assert notes == []
    nfr, pfr, n = direct_nfr(old, new)
    assert n == 4000 and result.inputs.n_rows == 4000
    assert result.metrics["negative_flip_rate"] == nfr
    assert result.metrics["positive_flip_rate"] == pfr
    assert result.eval_logs.metric == "acc"  # lm-eval's usual one of acc / acc_norm
    by_task = result.frame.by("task")
    for task in ("arc_easy", "hellaswag"):
        assert (
            by_task.loc[task, "negative_flip_rate"]
            == direct_nfr({task: old[task]}, {task: new[task]})[0]
        )
    summary = result.summary()
    assert summary["inputs"]["format"] == "lm-eval"
    assert [row["group"] for row in summary["by_group"]["task"]] == ["arc_easy", "hellaswag"]
    assert summary["eval_logs"]["excluded"]["total"] == 0
    assert summary["flipped_examples"]["rows"][0]["id"].split(":")[0] in ("arc_easy", "hellaswag")


def test_lm_eval_metric_by_name(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 300}, seed=2)
    a, b = write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    result = compare_eval_logs(a, b, metric="acc_norm")
    assert result.metrics["negative_flip_rate"] == direct_nfr(old, new, "acc_norm")[0]


@pytest.mark.parametrize("kind", ["eval", "json"])
def test_inspect_logs_give_the_flip_rates_of_the_raw_records(tmp_path, kind):
    old, new = inspect_pair(1500, seed=3, epochs=2)
    write = write_inspect_eval if kind == "eval" else write_inspect_json
    a = write(tmp_path / f"old.{kind}", "gsm8k", old)
    b = write(tmp_path / f"new.{kind}", "gsm8k", new)
    assert detect_eval_log(a) == detect_eval_log(b) == "inspect"
    result = compare_eval_logs(a, b)
    nfr, n = direct_inspect_nfr(old, new)
    assert n == 3000 and result.inputs.n_rows == 3000
    assert result.metrics["negative_flip_rate"] == nfr
    assert result.eval_logs.metric == "match"
    assert result.inputs.ids[0] == "gsm8k:0#1"


def test_helm_suite_runs_are_tasks_without_their_model(tmp_path):
    old_a, new_a = helm_pair(800, seed=4)
    old_b, new_b = helm_pair(400, seed=5)
    for version, (a, b) in (("old", (old_a, old_b)), ("new", (new_a, new_b))):
        model = "openai_gpt2" if version == "old" else "meta_llama-2-7b"
        write_helm_run(tmp_path / version / f"mmlu:subject=anatomy,model={model}", a)
        write_helm_run(tmp_path / version / f"boolq:model={model},data_augmentation=none", b)
    result = compare_eval_logs(tmp_path / "old", tmp_path / "new")
    assert sorted(result.eval_logs.tasks.index) == [
        "boolq:data_augmentation=none",
        "mmlu:subject=anatomy",
    ]
    assert result.eval_logs.metric == "exact_match"
    nf = sum(
        o["stats"][0]["mean"] == 1 and n["stats"][0]["mean"] == 0
        for o, n in zip(old_a + old_b, new_a + new_b, strict=True)
    )
    assert result.metrics["negative_flip_rate"] == nf / 1200
    run = read_eval_log(tmp_path / "new" / "mmlu:subject=anatomy,model=meta_llama-2-7b")
    row = run.items.iloc[0]
    assert (row.key, row.prompt, row.target, row.response) == (
        "id0",
        "<b>question</b> id0",
        "right",
        "answer to id0",
    )
    assert run.metrics() == ["exact_match", "num_output_tokens"]


def test_helm_keys_hold_perturbation_and_trial(tmp_path):
    entries = [
        helm_entry("id1", 1.0),
        helm_entry("id1", 0.0, perturbation={"name": "typos", "prob": 0.1}),
        helm_entry("id1", 1.0, trial=1),
    ]
    run = read_eval_log(write_helm_run(tmp_path / "r:model=m", entries), format="helm")
    assert run.items["key"].tolist() == ["id1", 'id1 [{"name":"typos","prob":0.1}]', "id1 trial 1"]


def test_tables_by_task_with_a_threshold_and_the_score_drop(tmp_path):
    rng = np.random.default_rng(6)
    n = 2000
    old = pd.DataFrame(
        {"id": np.arange(n), "task": np.where(np.arange(n) % 3, "qa", "sum"), "f1": rng.random(n)}
    )
    new = old.assign(f1=np.clip(old["f1"] + rng.normal(0, 0.2, n), 0, 1)).sample(
        frac=1.0, random_state=0
    )
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_parquet(tmp_path / "new.parquet", index=False)
    with pytest.raises(InputError, match=r"takes values other than 0 and 1 .*--score-threshold"):
        compare_eval_logs(tmp_path / "old.csv", tmp_path / "new.parquet", format="table")
    result = compare_eval_logs(
        tmp_path / "old.csv", tmp_path / "new.parquet", format="table", score_threshold=0.5
    )
    joined = new.merge(old, on="id", suffixes=("_new", "_old"))
    neg = (joined["f1_old"] >= 0.5) & (joined["f1_new"] < 0.5)
    assert result.metrics["negative_flip_rate"] == neg.sum() / n
    drop = joined["f1_old"] - joined["f1_new"]
    changes = result.eval_logs.score_changes()
    overall = changes.loc["(overall)"]
    assert overall["decreased"] == (drop > 0).sum()
    assert overall["total_decrease"] == pytest.approx(drop[drop > 0].sum(), rel=1e-12)
    assert overall["mean_decrease"] == pytest.approx(drop[drop > 0].mean(), rel=1e-12)
    assert changes.index[0] == "(overall)" and set(changes.index[1:]) == {"qa", "sum"}
    summary = result.summary()["eval_logs"]
    assert summary["score_threshold"] == 0.5 and summary["rule"] == "correct when f1 >= 0.5"
    assert summary["score_changes"]["overall"]["decreased"] == int((drop > 0).sum())


def test_a_table_without_a_task_column_is_one_task(tmp_path):
    pd.DataFrame({"item": ["a", "b"], "correct": [True, False]}).to_json(
        tmp_path / "old.jsonl", orient="records", lines=True
    )
    pd.DataFrame({"item": ["b", "a"], "correct": [True, False]}).to_json(
        tmp_path / "new.jsonl", orient="records", lines=True
    )
    result = compare_eval_logs(
        tmp_path / "old.jsonl", tmp_path / "new.jsonl", format="table", id_col="item"
    )
    assert result.metrics["negative_flip_rate"] == 0.5
    assert result.eval_logs.tasks.index.tolist() == ["(all)"]


# -- logs written by inspect-ai itself ------------------------------------------------------------


def test_zstd_eval_logs_written_by_inspect_ai(tmp_path):
    pytest.importorskip("zstandard")
    result, notes = _quiet(compare_eval_logs, DATA / "old.eval", DATA / "new.eval", metric="match")
    # the new model failed on item 3 (both epochs): excluded, counted, said
    assert notes == ["excluded 2 item(s) from the comparison: 2 errored (toy_qa 2)"]
    items = [i for i in range(12) if i != 3]
    nf = sum(right("old", i) and not right("new", i) for i in items)
    assert result.inputs.n_rows == 22
    assert result.metrics["negative_flip_rate"] == 2 * nf / 22
    tasks = result.eval_logs.tasks
    assert tasks.loc["toy_qa", ["n_old", "n_new", "errored"]].tolist() == [24, 24, 2]
    run = read_eval_log(DATA / "new.eval")
    assert run.metrics() == ["match", "partial"]
    assert run.items["prompt"].iat[0] == "item 0: the answer?"
    # partial credit "P" is 0.5: not a 0/1 metric, so it needs a threshold
    with pytest.raises(InputError, match="'partial' takes values other than 0 and 1"):
        load_eval_comparison(DATA / "old.eval", DATA / "new.eval", metric="partial")
    _quiet(
        load_eval_comparison,
        DATA / "old.eval",
        DATA / "new.eval",
        metric="partial",
        score_threshold=0.5,
    )


def test_a_zstd_log_without_zstandard_names_the_extra(monkeypatch):
    if sys.version_info >= (3, 14):
        pytest.skip("Python reads Zstandard natively")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'graceful\[inspect\]'"):
        read_eval_log(DATA / "old.eval")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["eval", "json"])
def test_logs_written_now_by_inspect_ai_mockllm(tmp_path, kind):
    pytest.importorskip("inspect_ai", reason="inspect-ai is part of make test's install (dev)")
    from tests.io.inspect_mock import write_logs

    n = 30
    a = write_logs(tmp_path / "old", "old", n=n, log_format=kind)
    b = write_logs(tmp_path / "new", "new", n=n, log_format=kind, fail=True)
    result, _ = _quiet(compare_eval_logs, a, b, metric="match")
    items = [i for i in range(n) if i != 3]
    nf = sum(right("old", i) and not right("new", i) for i in items)
    assert result.metrics["negative_flip_rate"] == nf / len(items)
    pf = sum(right("new", i) and not right("old", i) for i in items)
    assert result.metrics["positive_flip_rate"] == pf / len(items)


# -- exclusions: reported and counted, never compared ------------------------------------------


def test_hash_mismatches_are_excluded_and_counted_per_task(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 200, "piqa": 100}, seed=7)
    for i in (3, 5, 8):
        new["arc_easy"][i]["doc_hash"] = "changed"
    new["piqa"][0]["prompt_hash"] = "changed"
    new["piqa"][1]["target_hash"] = "changed"
    result, notes = _quiet(
        compare_eval_logs, write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    )
    tasks = result.eval_logs.tasks
    assert tasks["changed"].to_dict() == {"arc_easy": 3, "piqa": 2}
    assert result.inputs.n_rows == 295
    keep = {t: [r for r in rs if "changed" not in r.values()] for t, rs in new.items()}
    assert result.metrics["negative_flip_rate"] == direct_nfr(old, keep)[0]
    assert len(notes) == 1 and "5 changed between the runs" in notes[0]
    assert "arc_easy 3, piqa 2" in notes[0]
    excluded = result.eval_logs.excluded
    assert excluded[excluded.task == "arc_easy"]["key"].tolist() == ["3", "5", "8"]


def test_items_of_one_run_only_are_excluded_with_the_count(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 100}, seed=8)
    new["arc_easy"] = [*new["arc_easy"][5:], lm_eval_record("arc_easy", 1000, 1.0, 1.0)]
    result, notes = _quiet(
        compare_eval_logs, write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    )
    row = result.eval_logs.tasks.loc["arc_easy"]
    assert (row["only_old"], row["only_new"], row["n_compared"]) == (5, 1, 95)
    assert "5 only in" in notes[0] and "1 only in" in notes[0]
    assert result.summary()["eval_logs"]["excluded"] == {
        "changed": 0,
        "errored": 0,
        "only_old": 5,
        "only_new": 1,
        "total": 6,
    }


def test_tasks_of_one_run_are_reported_and_the_common_ones_compared(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 50, "piqa": 40, "boolq": 30}, seed=9)
    del old["boolq"], new["piqa"]
    result, notes = _quiet(
        compare_eval_logs, write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    )
    assert result.eval_logs.tasks.index.tolist() == ["arc_easy"]
    assert result.eval_logs.tasks_only_old == ("piqa",)
    assert result.eval_logs.tasks_only_new == ("boolq",)
    assert any("1 task(s) only in" in n and "'piqa'" in n and "(40 items)" in n for n in notes)
    summary = result.summary()["eval_logs"]
    assert summary["tasks_only_old"] == ["piqa"] and summary["tasks_only_new"] == ["boolq"]


def test_a_named_metric_missing_from_a_task_leaves_it_out(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 20}, seed=10)
    gsm = [lm_eval_record("gsm8k", i, 0, 0, metrics=["exact_match"]) for i in range(10)]
    for r in gsm:
        del r["acc"], r["acc_norm"]
        r["exact_match"] = 1.0
    old["gsm8k"] = new["gsm8k"] = gsm
    a, b = write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    result, notes = _quiet(compare_eval_logs, a, b, metric="acc")
    assert result.eval_logs.tasks_without_metric == ("gsm8k",)
    assert any("without the metric 'acc'" in n for n in notes)
    # without a name, each task gets its own usual metric
    result, _ = _quiet(compare_eval_logs, a, b)
    assert result.eval_logs.tasks["metric"].to_dict() == {"arc_easy": "acc", "gsm8k": "exact_match"}
    assert result.eval_logs.metric is None


def test_several_dated_files_of_a_task_read_the_newest_and_say_so(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 30}, seed=11)
    folder = write_lm_eval(tmp_path / "a", old, date="2024-01-01T00-00-00.000001")
    write_lm_eval(tmp_path / "a", new, date="2024-06-01T00-00-00.000001")
    run = read_eval_log(folder)
    assert run.values["acc"].tolist() == [r["acc"] for r in new["arc_easy"]]
    assert run.notes == (
        f"{folder}: task 'arc_easy' has 2 samples files; read the newest, "
        "samples_arc_easy_2024-06-01T00-00-00.000001.jsonl",
    )
    _, notes = _quiet(compare_eval_logs, folder, folder)
    assert notes == list(run.notes) * 2


def test_filters_make_tasks_of_their_own(tmp_path):
    records = [
        lm_eval_record(
            "gsm8k", i, 0, 0, filter=f, metrics=["exact_match"], exact_match=float(i % 2)
        )
        for f in ("strict-match", "flexible-extract")
        for i in range(4)
    ]
    run = read_eval_log(write_jsonl(tmp_path / "samples_gsm8k_2024-01-01T00-00-00.jsonl", records))
    assert run.tasks == ["gsm8k/strict-match", "gsm8k/flexible-extract"]
    assert run.metrics() == ["exact_match"]


def test_inspect_folders_read_the_newest_log_of_each_task(tmp_path):
    old, new = inspect_pair(20, seed=12)
    write_inspect_eval(tmp_path / "logs" / "a.eval", "t1", old, created="2024-01-01T00:00:00")
    write_inspect_eval(tmp_path / "logs" / "b.eval", "t1", new, created="2024-02-01T00:00:00")
    write_inspect_json(tmp_path / "logs" / "c.json", "t2", old)
    run = read_eval_log(tmp_path / "logs")
    assert run.tasks == ["t1", "t2"]
    assert len(run.items) == 40
    assert run.notes == (f"{tmp_path / 'logs'}: task 't1' has 2 logs; read the newest, b.eval",)


def test_inspect_scores_as_inspect_reads_them(tmp_path):
    samples = [
        inspect_sample(0, 1, "C"),
        inspect_sample(1, 1, "P"),
        inspect_sample(2, 1, "N"),
        inspect_sample(3, 1, True),
        inspect_sample(4, 1, 0.25),
        inspect_sample(5, 1, {"accuracy": "C", "f1": 0.5}, scorer="multi"),
        inspect_sample(6, 1, None, error="RuntimeError('boom')"),
    ]
    run = read_eval_log(write_inspect_json(tmp_path / "log.json", "t", samples))
    assert run.values["match"].tolist()[:5] == [1.0, 0.5, 0.0, 1.0, 0.25]
    assert run.values["multi/accuracy"].iat[5] == 1.0 and run.values["multi/f1"].iat[5] == 0.5
    assert run.items["errored"].tolist() == [False] * 6 + [True]
    assert run.items["prompt"].iat[0] == "What is item 0?"
    assert run.items["response"].iat[0] == "42"


def test_predictions_are_not_evaluation_logs(tmp_path):
    pd.DataFrame({"id": [1], "label": [0], "pred": [0]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"id": [1], "label": [0], "pred": [0]}).to_json(
        tmp_path / "p.jsonl", orient="records", lines=True
    )
    assert detect_eval_log(tmp_path / "p.csv") is None
    assert detect_eval_log(tmp_path / "p.jsonl") is None
    assert detect_eval_log(tmp_path / "missing.eval") is None
    assert EVAL_LOG_FORMATS == ("lm-eval", "inspect", "helm", "table")


def test_the_gate_sees_the_overall_nfr(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 200}, seed=13)
    a, b = write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new)
    nfr = direct_nfr(old, new)[0]
    assert compare_eval_logs(a, b, gate=Gate(max_nfr=nfr)).passed
    assert not compare_eval_logs(a, b, gate=Gate(max_nfr=nfr - 1e-9)).passed


# -- bad input: one line naming the file and what was wrong --------------------------------------


def test_a_truncated_jsonl_line_is_named_by_its_number(tmp_path):
    old, _ = lm_eval_pair({"arc_easy": 5}, seed=14)
    path = write_jsonl(tmp_path / "samples_arc_easy_2024-01-01T00-00-00.jsonl", old["arc_easy"])
    path.write_text(path.read_text()[:-40], encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}: line 5: not valid JSON .*truncated\?$"):
        read_eval_log(path)


def test_a_log_of_another_format_than_named(tmp_path):
    old, _ = inspect_pair(3)
    log = write_inspect_eval(tmp_path / "x.eval", "t", old)
    samples = write_lm_eval(tmp_path / "lm", lm_eval_pair({"a": 3})[0])
    with pytest.raises(InputError, match=r"x.eval: is an Inspect log, not an lm-evaluation"):
        read_eval_log(log, format="lm-eval")
    with pytest.raises(
        InputError, match=r"lm: is an lm-evaluation-harness samples log, not an Insp"
    ):
        read_eval_log(samples, format="inspect")
    with pytest.raises(InputError, match=r"x.eval: is an Inspect log, not a per-item table"):
        read_eval_log(log, format="table")
    with pytest.raises(InputError, match=r"is an Inspect log but .* is an lm-evaluation-harness"):
        load_eval_comparison(log, samples)


def test_a_zip_that_is_not_an_inspect_log(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.eval", "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match=r"x.eval: a zip, but not an Inspect log \(no header"):
        read_eval_log(tmp_path / "x.eval")
    (tmp_path / "y.eval").write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match=r"y.eval: not an Inspect .eval log \(not a zip file\)"):
        read_eval_log(tmp_path / "y.eval")
    (tmp_path / "z.json").write_text(json.dumps({"version": 2, "status": "success"}))
    with pytest.raises(InputError, match=r"z.json: not an Inspect log \(no eval spec"):
        read_eval_log(tmp_path / "z.json", format="inspect")


def test_runs_without_a_common_task(tmp_path):
    a = write_lm_eval(tmp_path / "a", lm_eval_pair({"arc_easy": 3})[0])
    b = write_lm_eval(tmp_path / "b", lm_eval_pair({"piqa": 3})[0])
    with pytest.raises(InputError, match=r"have no task in common \(.*'arc_easy'; .*'piqa'\)"):
        load_eval_comparison(a, b)


def test_a_metric_missing_from_some_records_names_the_first(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 10}, seed=15)
    del new["arc_easy"][6]["acc"]
    new["arc_easy"][6]["metrics"] = ["acc_norm"]
    b = write_lm_eval(tmp_path / "b", new)
    with pytest.raises(
        InputError, match=r"samples_arc_easy_.*: line 7: no numeric value for the metric 'acc'"
    ):
        load_eval_comparison(write_lm_eval(tmp_path / "a", old), b)


def test_a_metric_no_task_has_lists_the_metrics_found(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 3})
    with pytest.raises(
        InputError, match=r"has the metric 'f1' in both runs \(metrics found: acc, acc_norm\)"
    ):
        load_eval_comparison(
            write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new), metric="f1"
        )


def test_an_ambiguous_default_metric_lists_the_metrics(tmp_path):
    samples = [inspect_sample(0, 1, "C")]
    samples[0]["scores"]["other"] = {"value": 1}
    log = write_inspect_json(tmp_path / "log.json", "t", samples)
    with pytest.raises(InputError, match=r"several metrics \(match, other\) .*--metric"):
        load_eval_comparison(log, log)


def test_duplicate_items_and_missing_paths(tmp_path):
    record = lm_eval_record("a", 1, 1.0, 1.0)
    path = write_jsonl(tmp_path / "samples_a_2024-01-01T00-00-00.jsonl", [record, record])
    with pytest.raises(
        InputError, match=r"line 2: item '1' of task 'a' appears twice \(first at .*line 1\)"
    ):
        read_eval_log(path)
    with pytest.raises(InputError, match=r"nothing.eval: no such file or folder"):
        read_eval_log(tmp_path / "nothing.eval")
    pd.DataFrame({"id": [1]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError, match=r"p.csv: not an evaluation log .*format='table'"):
        read_eval_log(tmp_path / "p.csv")


def test_helm_suites_with_runs_of_several_models(tmp_path):
    old, new = helm_pair(3)
    write_helm_run(tmp_path / "suite" / "boolq:model=a", old)
    write_helm_run(tmp_path / "suite" / "boolq:model=b", new)
    with pytest.raises(InputError, match=r"same task 'boolq' \(runs of several models\?\)"):
        read_eval_log(tmp_path / "suite")


def test_correctness_helper_is_seeded():
    a, b = correctness(100, 0)
    assert (a == correctness(100, 0)[0]).all() and not (a == b).all()
