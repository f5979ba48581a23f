"""EvoKD (issue #6, docs/design.md §2.5): loaders, metrics, prompts, the oracle teacher (a
simulation of an LLM), label alignment, config; and short end-to-end runs of the
`evokd_distillation` flow (1-shot, oracle teacher) on the shipped defaults e-SNLI and
WNUT-17 (elad_core/data) and on an SST-2 folder (tests/fixtures/evokd/sst2: SST-2 is not
shipped). Nothing here needs ../shared/data; one optional extra compares with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES as FIXTURE_ROOT
from conftest import SHARED_DATA, read_artifacts

from elad_core.errors import ConfigError, DataError
from elad_core.evokd import datasets as D
from elad_core.evokd import prompts
from elad_core.evokd import splits as S
from elad_core.evokd.datasets import TaskExample, text_id
from elad_core.evokd.metrics import classification_metrics, ner_metrics
from elad_core.evokd.oracle_judge import EvoKDOracleJudge
from elad_core.teacher.oracle.judging import UnknownQuestion

FIXTURES = FIXTURE_ROOT / "evokd"
SST2_DIR = FIXTURES / "sst2"  # SST-2 in its real format, written for the tests
# the full reference copies beside a checkout: only an optional extra reads them
SHARED = SHARED_DATA
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason="../shared/data not present (reference copies)")


def _ex(text: str, label: str) -> TaskExample:
    return TaskExample(text_id(text), text, label, "test")


# ------------------------------------------------------------------ loaders
def test_sst2_loader_reads_labels_and_names_bad_lines(tmp_path):
    rows = D.load_task_split("sst2", str(SST2_DIR), "train")  # stsa.binary.train
    assert [(e.text, e.label) for e in rows[:2]] == [
        ("a warm , funny and beautifully acted film .", "positive"),
        ("the plot is thin and the jokes fall flat .", "negative")]
    assert len(rows) == 16 and rows[1].source == f"{SST2_DIR / 'stsa.binary.train'}:2"
    assert len(D.load_task_split("sst2", str(SST2_DIR), "test")) == 10
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


def test_sst2_is_not_shipped_and_needs_a_folder():
    with pytest.raises(DataError, match=r"task 'sst2' needs option 'data\.dataset' \(--dataset\): "
                                        r"SST-2 .* not redistributable"):
        D.load_task_split("sst2", None, "train")
    assert not (D.PACKAGE_DATA / "sst2").exists()


def test_esnli_loader_pairs_labels_and_errors(tmp_path):
    root = FIXTURES / "esnli"  # holds eSNLI_preproc/, as the original download does
    rows = D.load_esnli(root, "dev")
    assert [(e.text, e.label) for e in rows[:2]] == [
        ("Premise: A man in a red shirt is riding a bike down a hill . "
         "Hypothesis: A person is riding a bike .", "entailment"),
        ("Premise: Two children play with a ball in the park . "
         "Hypothesis: The children are asleep in bed .", "contradiction")]
    assert rows[0].source == f"{root / 'eSNLI_preproc' / 'labels.dev'}:1"
    # the task's "train" split reads e-SNLI's dev files when there is no s1.train
    assert D.load_task_split("esnli", str(root), "train") == rows
    assert [e.label for e in D.load_task_split("esnli", str(root), "test")] == [
        "entailment", "contradiction", "neutral"]
    assert [f.name for f in D.split_files("esnli", str(root), "test")] == [
        "s1.test", "s2.test", "labels.test"]
    bad = tmp_path / "eSNLI_preproc"
    bad.mkdir()
    for name, lines in (("s1", ["A cat sits .", "A dog barks ."]),
                        ("s2", ["An animal sits .", " "]), ("labels", ["entailment", "neutral"])):
        (bad / f"{name}.dev").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"s2\.dev:2: field 'hypothesis' is empty"):
        D.load_esnli(tmp_path, "dev")
    (bad / "s2.dev").write_text("An animal sits .\nA dog is loud .", encoding="utf-8")
    (bad / "labels.dev").write_text("entailment\nmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels\.dev:2: field 'label': expected one of "
                                        r"entailment, neutral, contradiction, got 'maybe'"):
        D.load_esnli(tmp_path, "dev")
    (bad / "labels.dev").write_text("entailment\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"differ in length: s1\.dev 2, s2\.dev 2, labels\.dev 1"):
        D.load_esnli(tmp_path, "dev")
    with pytest.raises(DataError, match=r"s1\.test: file not found"):
        D.load_esnli(tmp_path, "test")
    for name, line in (("s1", "A cat sits ."), ("s2", "A dog sits ."), ("labels", "contradiction")):
        (bad / f"{name}.train").write_text(line + "\n", encoding="utf-8")
    assert [e.label for e in D.load_task_split("esnli", str(tmp_path), "train")] == ["contradiction"]


def test_shipped_datasets_load():
    """The defaults read the copies shipped in the package (elad_core/data), licences beside."""
    package = Path(D.__file__).resolve().parents[1]
    for task in ("esnli", "wnut17"):
        root = D.dataset_root(task, None)
        assert root.is_relative_to(package / "data") and "shared" not in root.parts
        assert (root / "LICENSE").is_file() and (root / "SOURCE.txt").is_file()
    wnut = D.load_task_split("wnut17", None, "test")
    assert len(wnut) == 1287  # sentences, as the WNUT-17 test split holds
    assert D.entity_types(wnut) == ["corporation", "creative-work", "group", "location",
                                    "person", "product"]
    assert [len(D.load_task_split("wnut17", None, s)) for s in ("train", "dev")] == [3394, 1009]
    dev, test = D.load_task_split("esnli", None, "train"), D.load_task_split("esnli", None, "test")
    assert (len(dev), len(test)) == (3000, 1000)  # the seeded subset
    assert {e.label for e in dev} == {e.label for e in test} == set(D.ESNLI_LABELS)
    assert all(e.text.startswith("Premise: ") and " Hypothesis: " in e.text for e in dev)
    p = S.prepare_task("esnli", None, "train", "test", {}, None, 1, 500, None, 0)
    assert p.labels == ["entailment", "neutral", "contradiction"] and len(p.eval) == 500
    assert [e.label for e in p.seeds] == p.labels and len(p.reserve) == 2997
    from elad_core.elad.loaders import (
        load_split,  # ELAD's `format: esnli, dataset: esnli` reads it too
    )

    assert len(load_split("esnli", "esnli", "test", "label", {})) == 1000


@needs_shared
def test_shipped_copies_match_the_reference_copies():
    """Extra, only beside ../shared/data: WNUT-17 is shipped unchanged; the e-SNLI subset is
    the seeded line selection SOURCE.txt describes, each line unchanged."""
    import random

    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        assert (D.SHIPPED["wnut17"] / name).read_bytes() == (SHARED / "wnut17" / name).read_bytes()
    for split, size in (("dev", 3000), ("test", 1000)):
        for name in ("s1", "s2", "labels", "preproc1_expl_1"):
            file = Path("eSNLI_preproc") / f"{name}.{split}"
            full = (SHARED / "esnli" / file).read_bytes().split(b"\n")
            mine = (D.SHIPPED["esnli"] / file).read_bytes().split(b"\n")
            ends = full[-1] == b""
            assert (mine[-1] == b"") == ends, name
            lines = full[:-1] if ends else full
            keep = sorted(random.Random(0).sample(range(len(lines)), size))
            assert mine[:size] == [lines[i] for i in keep], (name, split)


def test_kshot_seeds_per_label_and_per_entity_type():
    rows = D.load_task_split("wnut17", None, "dev")
    seeds = S.kshot_seeds(rows, "ner", 2, seed=0)
    for t in D.entity_types(rows):  # greedy k-shot: every type in at least k sentences
        assert sum(t in D.example_types(e) for e in seeds) >= 2
    cls = [_ex(f"t{i}", "a" if i < 3 else "b") for i in range(10)]
    picked = S.kshot_seeds(cls, "classification", 3, seed=1, labels=["a", "b"])
    assert [e.label for e in picked] == ["a"] * 3 + ["b"] * 3
    with pytest.raises(DataError, match="label 'a' has only 3"):
        S.kshot_seeds(cls, "classification", 4, seed=1, labels=["a", "b"])
    reserve = S.reserve_pool(cls + [_ex("t9", "b")], picked, None, 0)
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
    from elad_core.teacher.client import TeacherClient
    from elad_core.teacher.oracle.server import OracleServer, read_request_log

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
    assert [load_evokd_config(p).data.task for p in examples] == ["esnli", "sst2", "wnut17"]
    assert EvoKDConfig().data.task == "esnli" and EvoKDConfig().data.kind == "classification"


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
    res = CliRunner().invoke(app, ["evokd", "--task", "sst2", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "not redistributable" in " ".join(res.output.split())
    assert "Traceback" not in res.output and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ end to end (slow)
ESNLI = ["entailment", "neutral", "contradiction"]


def _cfg(tmp_path, task: str | None, dataset: Path | None = None, **top) -> dict:
    """A short run; task None: the default task (e-SNLI, shipped); dataset: its folder."""
    data = {"k_shot": 1, "eval_size": 40, "reserve_size": 300}
    data.update({"task": task} if task else {})
    data.update({"dataset": str(dataset)} if dataset else {})
    cfg = {"run_name": f"e2e-{task or 'esnli'}", "runs_dir": str(tmp_path / "runs"), "rounds": 2,
           "data": data,
           "student": {"num_threads": 1, "max_length": 48},
           "train": {"steps": 3, "batch_size": 8, "replay": 4},
           "evokd": {"n_hard": 3, "n_easy": 3},
           "teacher": {"retry_delay_s": 0.0}}
    cfg.update(top)
    return cfg


@pytest.fixture(scope="module")
def esnli_run(prefect_harness, tmp_path_factory):
    """The default task (e-SNLI, from the subset shipped in the package)."""
    from elad_core.evokd.config import EvoKDConfig
    from flows.evokd.loop import evokd_distillation

    tmp = tmp_path_factory.mktemp("evokd-esnli")
    # half the oracle's request attempts fail with HTTP 500 (seeded): the teacher task
    # retries them (Prefect task retries, transient errors only).
    # Budget: round 1's a priori estimate (3 calls × (~200 prompt + 100 completion tokens))
    # fits in 1,500; round 2's (round 1's measured spend, ~1,300 for 6 e-SNLI pairs) does not, so
    # the run stops at that boundary although 3 rounds were asked for.
    cfg = EvoKDConfig.model_validate(_cfg(tmp, None, rounds=3, max_teacher_tokens=1500,
                                          teacher={"retry_delay_s": 0.0, "retries": 10,
                                                   "completion_tokens_estimate": 100,
                                                   "oracle": {"error_rate": 0.5, "seed": 1}}))
    assert cfg.data.task == "esnli" and cfg.data.dataset is None  # the shipped default
    return cfg, evokd_distillation(cfg)


@pytest.mark.slow
def test_esnli_one_shot_end_to_end(esnli_run):
    from elad_core.files import read_parquet
    from elad_core.teacher.oracle.server import read_request_log

    cfg, summary = esnli_run
    run = cfg.run_dir
    assert [r["round"] for r in summary.rounds] == [0, 1]
    assert summary.stopped.startswith("stopped before round 2: budget")
    assert 0 < summary.teacher_tokens <= 1500
    r0, r1 = run / "round_000", run / "round_001"
    for name in ("batch.parquet", "feedback.parquet", "adapter", "manifest.json"):
        assert (r0 / name).exists() and (r1 / name).exists(), name
    for name in ("teacher_analyse.json", "teacher_generate.json", "teacher_label.json", "eval.json"):
        assert (r1 / name).exists(), name
    seeds = read_parquet(r0 / "batch.parquet")
    assert [s["label"] for s in seeds] == ESNLI  # 1 per label
    batch = read_parquet(r1 / "batch.parquet")
    assert sorted(b["origin"] for b in batch) == ["easy"] * 3 + ["hard"] * 3
    assert all(b["status"] == "ok" and b["label"] in ESNLI for b in batch)
    # the oracle labels from gold: every teacher label equals the reserve's gold label
    gold = {r["text"]: r["label"] for r in read_parquet(run / "data" / "reserve.parquet")}
    assert all(gold[b["text"]] == b["label"] for b in batch)
    # feedback: the round-0 student's predictions on the new batch, before training on it
    fb = read_parquet(r1 / "feedback.parquet")
    assert len(fb) == 6 and summary.rounds[1]["feedback_accuracy"] == sum(f["correct"] for f in fb) / 6
    manifest = json.loads((r1 / "manifest.json").read_text())
    assert manifest["prompt_version"] == prompts.PROMPT_VERSION and manifest["teacher_calls"] == 3
    assert manifest["analysis"].startswith("The student got")
    assert 0.0 <= summary.final["f1"] <= 1.0 and summary.final["n"] == 40
    log = read_request_log(run / "oracle_requests.jsonl")
    assert any(r["status"] == 500 for r in log)  # injected faults happened ...
    assert sorted(r["mode"] for r in log if r["status"] == 200) == ["analyse", "generate", "label"]


@pytest.mark.slow
def test_esnli_rerun_is_cached_and_sends_no_request(esnli_run):
    from flows.evokd.loop import evokd_distillation

    cfg, first = esnli_run
    again = evokd_distillation(cfg)
    assert again.invocation.teacher_requests_sent == 0
    assert [(r["teacher_tokens"], r["f1"]) for r in again.rounds] == \
           [(r["teacher_tokens"], r["f1"]) for r in first.rounds]


@pytest.mark.slow
def test_esnli_artifacts(esnli_run):
    batch = read_artifacts("e2e-esnli-round-001-batch")
    assert batch and len(json.loads(batch[0].data)) == 6
    assert read_artifacts("e2e-esnli-round-001-metrics")
    assert len(json.loads(read_artifacts("e2e-esnli-f1-curve")[0].data)) == 2


@pytest.mark.slow
def test_wnut17_one_shot_end_to_end(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from elad_core.files import read_parquet
    from flows.evokd.loop import evokd_distillation

    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "wnut17"))
    summary = evokd_distillation(cfg)
    assert summary.stopped == "finished 2 rounds" and summary.invocation.teacher_requests_sent == 3
    batch = read_parquet(cfg.run_dir / "round_001" / "batch.parquet")
    assert len(batch) == 6
    for b in batch:  # BIO tags from the teacher, one per token
        assert len(b["label"].split(" ")) == len(b["text"].split(" "))
    assert {"precision", "recall", "f1"} <= set(summary.final)


@pytest.mark.slow
def test_random_baseline_pays_only_label_calls(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from elad_core.teacher.oracle.server import read_request_log
    from flows.evokd.loop import evokd_distillation

    # SST-2 (not shipped) from a folder in its real format: the user-data path of a named task
    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "sst2", SST2_DIR, run_name="rnd",
                                          evokd={"method": "random", "n_random": 5}))
    summary = evokd_distillation(cfg)
    assert summary.rounds[1]["new_examples"] == 5 and summary.invocation.teacher_requests_sent == 1
    modes = [r["mode"] for r in read_request_log(cfg.run_dir / "oracle_requests.jsonl")]
    assert modes == ["label"]


@pytest.mark.slow
def test_permanent_teacher_failure_stops_the_run_at_that_round(prefect_harness, tmp_path):
    from elad_core.evokd.config import EvoKDConfig
    from flows.evokd.loop import evokd_distillation

    # every oracle request is answered HTTP 400 (permanent: not retried)
    cfg = EvoKDConfig.model_validate(_cfg(tmp_path, "sst2", SST2_DIR, run_name="bad", rounds=3,
                                          teacher={"oracle": {"bad_request_rate": 1.0}}))
    summary = evokd_distillation(cfg)
    assert summary.stopped.startswith("stopped in round 1: teacher analyse call failed")
    assert summary.invocation.teacher_requests_sent == 1  # no retry of a permanent error
    assert [r["new_examples"] for r in summary.rounds] == [2, 0]
    assert summary.final["round"] == 1 and "f1" in summary.final
