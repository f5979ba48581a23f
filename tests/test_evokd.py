"""EvoKD (issue #6, DESIGN.md §2.5): loaders, metrics, prompts, the oracle teacher (a
simulation of an LLM), label alignment, config; and short end-to-end runs of the
`evokd_distillation` flow on SST-2 and WNUT-17 (1-shot) with the oracle teacher.
"""

from __future__ import annotations

import json

import pytest

from elad_core.errors import ConfigError, DataError
from elad_core.evokd import data as D
from elad_core.evokd import prompts
from elad_core.evokd.data import TaskExample, text_id
from elad_core.evokd.metrics import classification_metrics, ner_metrics
from elad_core.evokd.oracle import EvoKDOracleJudge
from elad_core.teacher_oracle import UnknownQuestion


def _ex(text: str, label: str) -> TaskExample:
    return TaskExample(text_id(text), text, label, "test")


# ------------------------------------------------------------------ loaders
def test_sst2_loader_reads_labels_and_names_bad_lines(tmp_path):
    good = tmp_path / "s.train"
    good.write_text("1 a fine film .\n0 dull .\n", encoding="utf-8")
    rows = D.load_sst2(good)
    assert [(e.text, e.label) for e in rows] == [("a fine film .", "positive"), ("dull .", "negative")]
    bad = tmp_path / "bad.train"
    bad.write_text("1 ok .\n2 what ?\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.train:2: field 'label'"):
        D.load_sst2(bad)
    empty = tmp_path / "empty.train"
    empty.write_text("0 fine\n1 \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.train:2: field 'text' is empty"):
        D.load_sst2(empty)


def test_conll_loader_sentences_and_errors(tmp_path):
    f = tmp_path / "a.conll"
    # WNUT-17's train file separates sentences with a line holding a single tab
    f.write_text("Empire\tB-location\nState\tI-location\nrocks\tO\n\t\nhi\tO\n", encoding="utf-8")
    rows = D.load_conll(f)
    assert [(e.text, e.label) for e in rows] == [
        ("Empire State rocks", "B-location I-location O"), ("hi", "O")]
    assert D.entity_types(rows) == ["location"]
    assert D.label_set("ner", rows) == ["O", "B-location", "I-location"]
    f.write_text("a\tO\nb O\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.conll:2: expected 'token<TAB>tag'"):
        D.load_conll(f)
    f.write_text("a\tO\nb\tX-person\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.conll:2: field 'tag'"):
        D.load_conll(f)


def test_generic_classification_loader_jsonl_and_csv(tmp_path):
    j = tmp_path / "d.jsonl"
    j.write_text('{"sentence": "good", "y": 1}\n{"sentence": "bad", "y": 0}\n', encoding="utf-8")
    rows = D.load_classification(j, {"text": "sentence", "label": "y"})
    assert [(e.text, e.label) for e in rows] == [("good", "1"), ("bad", "0")]
    j.write_text('{"sentence": "good", "y": 1}\n{"sentence": "", "y": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:2: field 'sentence'"):
        D.load_classification(j, {"text": "sentence", "label": "y"})
    c = tmp_path / "d.csv"
    c.write_text("text,label\nnice,pos\n,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv:3: field 'text'"):  # line 1 is the header
        D.load_classification(c)


def test_shared_datasets_load():
    sst = D.load_task_split("sst2", None, "train")
    wnut = D.load_task_split("wnut17", None, "test")
    assert len(sst) == 6920 and {e.label for e in sst} == {"negative", "positive"}
    assert len(wnut) == 1287  # sentences, as /work/shared/data/README.md lists
    assert D.entity_types(wnut) == ["corporation", "creative-work", "group", "location",
                                    "person", "product"]


def test_kshot_seeds_per_label_and_per_entity_type():
    rows = D.load_task_split("wnut17", None, "dev")
    seeds = D.kshot_seeds(rows, "ner", 2, seed=0)
    for t in D.entity_types(rows):  # greedy k-shot: every type in at least k sentences
        assert sum(t in D.example_types(e) for e in seeds) >= 2
    cls = [_ex(f"t{i}", "a" if i < 3 else "b") for i in range(10)]
    picked = D.kshot_seeds(cls, "classification", 3, seed=1, labels=["a", "b"])
    assert [e.label for e in picked] == ["a"] * 3 + ["b"] * 3
    with pytest.raises(DataError, match="label 'a' has only 3"):
        D.kshot_seeds(cls, "classification", 4, seed=1, labels=["a", "b"])
    reserve = D.reserve_pool(cls + [_ex("t9", "b")], picked, None, 0)
    assert len(reserve) == 4 and not {e.text for e in reserve} & {e.text for e in picked}


# ------------------------------------------------------------------ metrics
def test_classification_metrics_by_hand():
    # gold a a b b, pred a b b b: accuracy 3/4; F1(a) = 2·1·0.5/1.5 = 2/3, F1(b) = 2·(2/3)·1/(5/3) = 0.8
    m = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert m["accuracy"] == 0.75 and m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    with pytest.raises(DataError):
        classification_metrics(["a"], [], ["a"])


def test_ner_metrics_are_entity_level():
    gold = [["B-person", "I-person", "O", "B-location"]]
    # the person span is cut short (no credit), the location is exact: P = 1/2, R = 1/2
    pred = [["B-person", "O", "O", "B-location"]]
    m = ner_metrics(gold, pred)
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
    assert m["token_accuracy"] == 0.75
    with pytest.raises(DataError, match="sentence 0 has 4 gold tags and 3"):
        ner_metrics(gold, [["O", "O", "O"]])


# ------------------------------------------------------------------ prompts
def test_prompt_version_follows_the_template_files():
    assert prompts.PROMPT_VERSION == prompts.prompt_version(prompts.TEMPLATES)
    edited = {**prompts.TEMPLATES, "label_ner": prompts.TEMPLATES["label_ner"] + " "}
    assert prompts.prompt_version(edited) != prompts.PROMPT_VERSION


def test_parse_generated_sections_and_statuses():
    reply = "HARD\n1. first hard\n2) second  hard\nEASY\n1. an easy one\n"
    assert prompts.parse_generated(reply, 2, 1) == (["first hard", "second hard"], ["an easy one"], "ok")
    assert prompts.parse_generated("**Hard:**\n1. only one", 2, 2) == (["only one"], [], "partial")
    assert prompts.parse_generated("I cannot help with that.", 2, 2) == ([], [], "unparsable")
    assert prompts.parse_generated("Hard (likely wrong):\n1. x\nEasy ones:\n1. y", 1, 1) == \
        (["x"], ["y"], "ok")


def test_parse_labels_closed_set_and_token_counts():
    got = prompts.parse_labels("1. Positive\n2. great\n3. negative.", "classification",
                               ["a", "b", "c"], ["negative", "positive"])
    assert got == ["positive", None, "negative"]  # "great" is not a label
    tags = ["O", "B-person", "I-person"]
    got = prompts.parse_labels("1. B-person I-person O\n2. O O", "ner", ["Ann Lee sings", "hi there you"], tags)
    assert got == ["B-person I-person O", None]  # 2 tags for 3 tokens: no label


def test_analyse_message_round_trips_to_the_oracles_reader():
    text, tags = "Ann Lee went to Paris", "B-person I-person O O B-location"
    gold = prompts.answer_text("ner", text, tags)
    assert gold == "person: Ann Lee | location: Paris"
    msgs = prompts.analyse_messages("NER.", "person, location", [("hi", prompts.NO_ENTITIES)],
                                    [(text, gold, prompts.NO_ENTITIES)])
    right, wrong = prompts.shown_examples(msgs[-1]["content"])
    assert right == [("hi", prompts.NO_ENTITIES)] and wrong == [(text, gold, prompts.NO_ENTITIES)]
    assert prompts.types_of_answer(gold) == {"person", "location"}
    assert prompts.prompt_kind(msgs[-1]["content"]) == "analyse"


# ------------------------------------------------------------------ the oracle (a simulation)
RESERVE = [_ex("a truly wonderful film", "positive"), _ex("a wonderful warm film", "positive"),
           _ex("a wonderful mess of a film", "negative"), _ex("boring and slow", "negative"),
           _ex("slow , boring , long", "negative"), _ex("charming and bright", "positive")]


def _generate(judge, right, wrong, n_hard, n_easy):
    ask = prompts.analyse_messages("Sentiment.", "negative, positive", right, wrong)
    analysis, _, mode = judge.reply(ask)
    assert mode == "analyse"
    text, _, mode = judge.reply(prompts.generate_messages(ask, analysis, n_hard, n_easy))
    assert mode == "generate"
    return analysis, prompts.parse_generated(text, n_hard, n_easy)


def test_oracle_hard_texts_resemble_the_wrong_ones_with_their_label():
    judge = EvoKDOracleJudge(RESERVE, "classification")
    wrong = [("wonderful film , truly", "positive", "negative")]
    right = [("so slow and boring", "negative")]
    analysis, (hard, easy, status) = _generate(judge, right, wrong, 2, 1)
    assert analysis == ("The student got 1 of the 2 inputs shown wrong. Confusions "
                        "(correct -> student): positive -> negative: 1.")
    # the two positive texts sharing "wonderful film"; not the negative "wonderful mess"
    assert status == "ok" and set(hard) == {"a truly wonderful film", "a wonderful warm film"}
    assert easy == ["boring and slow"]  # nearest negative to the right example
    # nothing is handed out twice: the next request gets other texts
    _, (hard2, easy2, _) = _generate(judge, right, wrong, 2, 1)
    assert not set(hard2 + easy2) & set(hard + easy)
    assert hard2[0] == "charming and bright"  # the last positive, then topped up at random
    assert set(hard + easy + hard2 + easy2) == {e.text for e in RESERVE}  # 6 distinct texts


def test_oracle_labels_from_gold_and_refuses_unknown():
    judge = EvoKDOracleJudge(RESERVE, "classification", known=[_ex("seed text", "positive")])
    msgs = prompts.label_messages("classification", "Sentiment.", "negative, positive",
                                  ["boring and slow", "seed text"])
    text, _, mode = judge.reply(msgs)
    assert mode == "label" and text == "1. negative\n2. positive"
    with pytest.raises(UnknownQuestion, match="unknown text 'never seen'"):
        judge.reply(prompts.label_messages("classification", "S.", "a", ["never seen"]))
    with pytest.raises(UnknownQuestion, match="not an analyse"):
        judge.reply([{"role": "user", "content": "hello"}])


def test_oracle_static_generation_ignores_the_student_and_given_texts():
    judge = EvoKDOracleJudge(RESERVE, "classification", given=["a truly wonderful film"])
    msgs = prompts.static_messages("Sentiment.", "negative, positive",
                                   [("wonderful film", "positive")], 2)
    text, _, mode = judge.reply(msgs)
    texts, status = prompts.parse_static(text, 2)
    assert mode == "static" and status == "ok"
    assert texts == ["a wonderful warm film", "charming and bright"]  # positives; not the given one


def test_oracle_ner_hard_texts_hold_the_missed_entity_type():
    reserve = [_ex("I love Paris", "O O B-location"), _ex("I love Ann", "O O B-person"),
               _ex("I love it", "O O O")]
    judge = EvoKDOracleJudge(reserve, "ner")
    wrong = [("we love Rome", "location: Rome", prompts.NO_ENTITIES)]
    _, (hard, _, _) = _generate(judge, [], wrong, 1, 0)
    assert hard == ["I love Paris"]


def test_oracle_is_served_through_litellm(tmp_path):
    """The judge behind the project's OracleServer, reached by TeacherClient (litellm)."""
    from elad_core.evokd.rounds import chat
    from elad_core.teacher_client import TeacherClient
    from elad_core.teacher_oracle_server import OracleServer, read_request_log

    log = tmp_path / "req.jsonl"
    with OracleServer(EvoKDOracleJudge(RESERVE, "classification"), request_log=log) as server:
        client = TeacherClient("openai/oracle", api_base=server.api_base, max_concurrency=1)
        msgs = prompts.label_messages("classification", "S.", "negative, positive",
                                      ["charming and bright"])
        reply = chat(client, msgs)
    assert reply.text == "1. positive" and reply.prompt_tokens > 20 and reply.completion_tokens > 0
    rows = read_request_log(log)
    assert [(r["mode"], r["status"]) for r in rows] == [("label", 200)]


# ------------------------------------------------------------------ student, config
def test_ner_labels_sit_on_the_first_word_piece():
    from elad_core.evokd.student import encode, load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model(None))
    labels = ["O", "B-person", "I-person"]
    feats, word_ids = encode(tok, "ner", ["Zaphod Beeblebrox waves"], ["B-person I-person O"],
                             {x: i for i, x in enumerate(labels)}, 32)
    ids, lab = feats[0]["input_ids"], feats[0]["labels"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert len(pieces) > 5  # the names split into several word pieces
    first = [i for i, w in enumerate(word_ids[0]) if w is not None and w != word_ids[0][i - 1]]
    assert [lab[i] for i in first] == [1, 2, 0]  # one label per word, on its first piece
    assert all(x == -100 for i, x in enumerate(lab) if i not in first)  # the rest ignored


def test_config_rejects_unknown_keys_and_layers_teacher_defaults(tmp_path):
    from elad_core.evokd.config import EvoKDConfig, load_evokd_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("evokd:\n  n_hardd: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml: option 'evokd\.n_hardd'"):
        load_evokd_config(cfg)
    c = EvoKDConfig.model_validate({"teacher": {"model": "openai/gpt-4o-mini"}})
    assert c.teacher.max_tokens == 1024 and c.teacher.model == "openai/gpt-4o-mini"
    assert c.evokd.per_round == 16
    with pytest.raises(ConfigError, match="n_hard \\+ n_easy"):
        load_evokd_config(None, {"evokd.n_hard": 0, "evokd.n_easy": 0})
    from pathlib import Path

    examples = sorted((Path(D.__file__).parent / "configs").glob("*.yaml"))
    assert [load_evokd_config(p).data.task for p in examples] == ["sst2", "wnut17"]


def test_train_steps_follow_epochs():
    from elad_core.evokd.config import EvoKDTrainConfig
    from elad_core.evokd.rounds import train_steps

    cfg = EvoKDTrainConfig(epochs=4, batch_size=16, min_steps=3, max_steps=60)
    assert train_steps(2, cfg) == 4  # 4 passes over 2 seeds in batches of 2
    assert train_steps(32, cfg) == 8  # ceil(4 · 32 / 16)
    assert train_steps(1000, cfg) == 60  # clamped
    assert train_steps(32, EvoKDTrainConfig(steps=5)) == 5  # a fixed number wins


def test_cli_bad_data_exits_2_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    bad = tmp_path / "d.jsonl"
    bad.write_text('{"text": "fine", "label": "pos"}\n{"label": "neg"}\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["evokd", "--task", "classification", "--dataset", str(bad),
                                   "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "d.jsonl:2: field 'text'" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ end to end (slow)
def _cfg(tmp_path, task: str, **top) -> dict:
    cfg = {"run_name": f"e2e-{task}", "runs_dir": str(tmp_path / "runs"), "rounds": 2,
           "data": {"task": task, "k_shot": 1, "eval_size": 40, "reserve_size": 300},
           "student": {"num_threads": 1, "max_length": 48},
           "train": {"steps": 3, "batch_size": 8, "replay": 4},
           "evokd": {"n_hard": 3, "n_easy": 3},
           "teacher": {"retry_delay_s": 0.0}}
    cfg.update(top)
    return cfg


@pytest.fixture(scope="module")
def sst2_run(prefect_harness, tmp_path_factory):
    from elad_core.evokd.config import EvoKDConfig
    from flows.evokd_distillation import evokd_distillation

    tmp = tmp_path_factory.mktemp("evokd-sst2")
    # half the oracle's request attempts fail with HTTP 500 (seeded): the teacher task
    # retries them (Prefect task retries, transient errors only).
    # Budget: round 1's a priori estimate (3 calls × (~200 prompt + 100 completion tokens))
    # fits in 1,500; round 2's (round 1's measured spend, ~1,000 for 6 texts) does not, so
    # the run stops at that boundary although 3 rounds were asked for.
    cfg = EvoKDConfig.model_validate(_cfg(tmp, "sst2", rounds=3, max_teacher_tokens=1500,
                                          teacher={"retry_delay_s": 0.0, "retries": 10,
                                                   "completion_tokens_estimate": 100,
                                                   "oracle": {"error_rate": 0.5, "seed": 3}}))
    return cfg, evokd_distillation(cfg)


@pytest.mark.slow
def test_sst2_one_shot_end_to_end(sst2_run):
    from elad_core.files import read_parquet
    from elad_core.teacher_oracle_server import read_request_log

    cfg, summary = sst2_run
    run = cfg.run_dir
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    assert summary["stopped"].startswith("stopped before round 2: budget")
    assert 0 < summary["teacher_tokens"] <= 1500
    r0, r1 = run / "round_000", run / "round_001"
    for name in ("batch.parquet", "feedback.parquet", "adapter", "manifest.json"):
        assert (r0 / name).exists() and (r1 / name).exists(), name
    for name in ("teacher_analyse.json", "teacher_generate.json", "teacher_label.json", "eval.json"):
        assert (r1 / name).exists(), name
    seeds = read_parquet(r0 / "batch.parquet")
    assert [s["label"] for s in seeds] == ["negative", "positive"]  # 1 per label
    batch = read_parquet(r1 / "batch.parquet")
    assert sorted(b["origin"] for b in batch) == ["easy"] * 3 + ["hard"] * 3
    assert all(b["status"] == "ok" and b["label"] in ("negative", "positive") for b in batch)
    # the oracle labels from gold: every teacher label equals the reserve's gold label
    gold = {r["text"]: r["label"] for r in read_parquet(run / "data" / "reserve.parquet")}
    assert all(gold[b["text"]] == b["label"] for b in batch)
    # feedback: the round-0 student's predictions on the new batch, before training on it
    fb = read_parquet(r1 / "feedback.parquet")
    assert len(fb) == 6 and summary["rounds"][1]["feedback_accuracy"] == sum(f["correct"] for f in fb) / 6
    manifest = json.loads((r1 / "manifest.json").read_text())
    assert manifest["prompt_version"] == prompts.PROMPT_VERSION and manifest["teacher_calls"] == 3
    assert manifest["analysis"].startswith("The student got")
    assert 0.0 <= summary["final"]["f1"] <= 1.0 and summary["final"]["n"] == 40
    log = read_request_log(run / "oracle_requests.jsonl")
    assert any(r["status"] == 500 for r in log)  # injected faults happened ...
    assert sorted(r["mode"] for r in log if r["status"] == 200) == ["analyse", "generate", "label"]


@pytest.mark.slow
def test_sst2_rerun_is_cached_and_sends_no_request(sst2_run):
    from flows.evokd_distillation import evokd_distillation

    cfg, first = sst2_run
    again = evokd_distillation(cfg)
    assert again["teacher_requests_sent"] == 0
    assert [(r["teacher_tokens"], r["f1"]) for r in again["rounds"]] == \
           [(r["teacher_tokens"], r["f1"]) for r in first["rounds"]]


@pytest.mark.slow
def test_sst2_artifacts(sst2_run):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read(key):
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    batch = asyncio.run(read("e2e-sst2-round-001-batch"))
    assert batch and len(json.loads(batch[0].data)) == 6
    assert asyncio.run(read("e2e-sst2-round-001-metrics"))
    assert len(json.loads(asyncio.run(read("e2e-sst2-f1-curve"))[0].data)) == 2


@pytest.mark.slow
def test_wnut17_one_shot_end_to_end(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from elad_core.files import read_parquet
    from flows.evokd_distillation import evokd_distillation

    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "wnut17"))
    summary = evokd_distillation(cfg)
    assert summary["stopped"] == "finished 2 rounds" and summary["teacher_requests_sent"] == 3
    batch = read_parquet(cfg.run_dir / "round_001" / "batch.parquet")
    assert len(batch) == 6
    for b in batch:  # BIO tags from the teacher, one per token
        assert len(b["label"].split(" ")) == len(b["text"].split(" "))
    assert {"precision", "recall", "f1"} <= set(summary["final"])


@pytest.mark.slow
def test_random_baseline_pays_only_label_calls(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from elad_core.teacher_oracle_server import read_request_log
    from flows.evokd_distillation import evokd_distillation

    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "sst2", run_name="rnd",
                                          evokd={"method": "random", "n_random": 5}))
    summary = evokd_distillation(cfg)
    assert summary["rounds"][1]["new_examples"] == 5 and summary["teacher_requests_sent"] == 1
    modes = [r["mode"] for r in read_request_log(cfg.run_dir / "oracle_requests.jsonl")]
    assert modes == ["label"]


@pytest.mark.slow
def test_permanent_teacher_failure_stops_the_run_at_that_round(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from flows.evokd_distillation import evokd_distillation

    # every oracle request is answered HTTP 400 (permanent: not retried)
    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "sst2", run_name="bad", rounds=3,
                                          teacher={"oracle": {"bad_request_rate": 1.0}}))
    summary = evokd_distillation(cfg)
    assert summary["stopped"].startswith("stopped in round 1: teacher analyse call failed")
    assert summary["teacher_requests_sent"] == 1  # no retry of a permanent error
    assert [r["new_examples"] for r in summary["rounds"]] == [2, 0]
    assert summary["final"]["round"] == 1 and "f1" in summary["final"]
