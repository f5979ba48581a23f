"""EvoKD distillation (docs/design.md §2.5, issue #6) as a Prefect flow of cached tasks.

Round 0 trains the student on the k-shot seeds (or starts from `student.init_weights`).
Each later round reads as the algorithm (method `evokd`):
  [1] feedback: the student's right / wrong predictions on the latest batch, taken before
      it trained on that batch (`elad_core.evokd.rounds`)
  [2] analyse (teacher)   [3] generate n_hard + n_easy texts (teacher, same conversation)
  [4] label the new texts (teacher, a separate call)
  [5] continue training on the new batch + a replay sample of earlier batches
  [6] evaluate on the fixed test subset (every round, or only the last)
Baselines run through the same flow: `static` (one generate call shown only the seeds),
`random` (reserve draws labelled by the teacher), `kshot` (round 0 only). A round's
teacher spend is estimated before it starts (the mean of earlier teacher rounds, a priori
for the first) and the run stops at that round boundary when a budget would be passed.
Writes runs/<run>/round_NNN/ (batch / feedback parquet, teacher_*.json, adapter or model,
eval.json, manifest.json), Prefect artifacts and summary.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.tasks import exponential_backoff

from elad_core.budget import Budget, Usage
from elad_core.errors import ConfigError
from elad_core.evokd import prompts, rounds
from elad_core.evokd.config import EvoKDConfig
from elad_core.evokd.data import DESCRIPTIONS, TaskExample, text_key
from elad_core.evokd.oracle import EvoKDOracleJudge, evokd_teacher_endpoint
from elad_core.evokd.preflight import evokd_preflight
from elad_core.files import hash_dir, read_parquet
from flows.distill_round import StepTimer
from tasks import in_run
from tasks.evokd import (
    evaluate_evokd,
    feedback_on_batch,
    prepare_evokd_data,
    publish_evokd_round,
    publish_evokd_run,
    read_rows,
    teacher_call,
    train_evokd,
    write_batch,
)
from tasks.teacher import REPLAYED, REQUESTS_SENT

TEACHER_CALLS = {"evokd": 3, "static": 2, "random": 1, "kshot": 0}


def _examples(ref: dict) -> list[TaskExample]:
    return [TaskExample(r["id"], r["text"], r["label"], r["source"]) for r in read_rows(ref)]


def _student(config: EvoKDConfig) -> dict:
    """What the student tasks need (and are cached on): base path + content hash, mode."""
    from elad_core.evokd.student import resolve_model

    sc = config.student
    base = resolve_model(sc.model)
    return {"base": base, "base_sha": hash_dir(Path(base)) if Path(base).is_dir() else base,
            "mode": sc.mode, "device": sc.device, "max_length": sc.max_length, "bf16": sc.bf16,
            "num_threads": sc.num_threads}


def _init_weights(config: EvoKDConfig) -> dict:
    path = config.student.init_weights
    if path and not Path(path).is_dir():
        raise ConfigError(f"option 'student.init_weights': {path} is not a folder")
    return {"path": str(Path(path).resolve()), "sha": hash_dir(Path(path))} if path else {}


class EvoKDRun:
    """The state one flow run carries from round to round (refs and records, no models)."""

    def __init__(self, config: EvoKDConfig, data: dict, api_base: str | None):
        self.config, self.data, self.api_base = config, data, api_base
        self.run_dir = config.run_dir.resolve()
        self.kind, self.labels = data["kind"], data["labels"]
        self.task_text = config.data.task_description or DESCRIPTIONS[config.data.task]
        self.student = _student(config)
        self.seeds, self.reserve = _examples(data["seeds"]), _examples(data["reserve"])
        self.weights: dict = {}
        self.batches: list[dict] = []  # batch refs, round order
        self.feedback: dict = {}  # feedback ref of the latest batch
        self.records: list[dict] = []
        tc = config.teacher
        self.teacher_key = {**tc.model_dump(include={"model", "temperature", "max_tokens",
                                                     "input_cost_per_1m_usd",
                                                     "output_cost_per_1m_usd"}),
                            "prompt_version": prompts.PROMPT_VERSION}
        self.teacher_task = in_run(teacher_call, self.run_dir).with_options(
            retries=tc.retries, retry_delay_seconds=exponential_backoff(
                backoff_factor=tc.retry_delay_s))

    # ------------------------------------------------------------------ steps
    def teacher(self, step: str, messages: list[dict], rdir: Path) -> dict:
        return self.teacher_task(step, messages, self.teacher_key,
                                 self.config.teacher.model_dump(mode="json"), self.api_base,
                                 rdir / f"teacher_{step}.json")

    def earlier_rows(self) -> list[dict]:
        return [row for b in self.batches for row in read_rows(b)]

    def train(self, init: dict, rows: list[dict], steps: int, seed: int, rdir: Path) -> dict:
        out = rdir / ("adapter" if self.config.student.mode == "lora" else "model")
        return in_run(train_evokd, self.run_dir)(
            self.student, self.kind, self.labels, init,
            [{"text": r["text"], "label": r["label"]} for r in rows],
            self.config.train.model_dump(mode="json"), steps, seed, out)

    def feedback_on(self, batch: dict, rdir: Path) -> dict:
        return in_run(feedback_on_batch, self.run_dir)(
            self.student, self.kind, self.labels, self.weights, batch, rdir / "feedback.parquet")

    def evaluate(self, rdir: Path) -> dict:
        return in_run(evaluate_evokd, self.run_dir)(
            self.student, self.kind, self.labels, self.weights, self.data["eval"],
            self.config.eval.batch_size, rdir / "eval.json")

    # ------------------------------------------------------------------ texts of a round
    def new_texts(self, r: int, rdir: Path, rec: dict) -> list[tuple[str, str]] | None:
        """[2]-[3] (or the baseline's stand-in): (text, origin) pairs; None if a call failed."""
        ev, cfg = self.config.evokd, self.config
        if ev.method == "random":
            seen = {text_key(x["text"]) for x in self.earlier_rows()}
            draw = rounds.random_draw(self.reserve, seen, ev.per_round, cfg.seed * 1_009 + r)
            return [(t, "random") for t in draw]
        if ev.method == "static":
            reply = self._call(rec, "static", rounds.static_request(
                self.kind, self.task_text, self.labels, self.seeds, ev.per_round), rdir)
            if reply is None:
                return None
            texts, rec["generate_status"] = prompts.parse_static(reply["text"], ev.per_round)
            return [(t, "static") for t in texts]
        right, wrong = rounds.pick_shown(read_rows(self.feedback), ev.show_right, ev.show_wrong,
                                         cfg.seed * 1_009 + r)
        ask = rounds.analyse_request(self.kind, self.task_text, self.labels, right, wrong)
        analysis = self._call(rec, "analyse", ask, rdir)
        if analysis is None:
            return None
        rec["analysis"] = analysis["text"]
        reply = self._call(rec, "generate", prompts.generate_messages(
            ask, analysis["text"], ev.n_hard, ev.n_easy), rdir)
        if reply is None:
            return None
        hard, easy, rec["generate_status"] = prompts.parse_generated(reply["text"], ev.n_hard,
                                                                     ev.n_easy)
        return [(t, "hard") for t in hard] + [(t, "easy") for t in easy]

    def _call(self, rec: dict, step: str, messages: list[dict], rdir: Path) -> dict | None:
        res = self.teacher(step, messages, rdir)
        rec["teacher_calls"] += 1
        rec["teacher_tokens"] += res["teacher_tokens"]
        rec["cost_usd"] = round(rec["cost_usd"] + res["cost_usd"], 8)
        if res["status"] != "ok":
            rec["failed"] = f"teacher {step} call failed: {res['error']}"
            return None
        return res

    def label(self, rows: list[rounds.BatchRow], rdir: Path, rec: dict) -> list[rounds.BatchRow]:
        """[4] the teacher labels the new texts (one call for the batch)."""
        texts = [x.text for x in rows if x.status == "unlabelled"]
        if not texts:
            return rows
        reply = self._call(rec, "label", rounds.label_request(self.kind, self.task_text,
                                                               self.labels, texts), rdir)
        got = (prompts.parse_labels(reply["text"], self.kind, texts, self.labels) if reply
               else [None] * len(texts))
        rec["labels_parsed"] = sum(y is not None for y in got)
        return rounds.with_labels(rows, got)

    # ------------------------------------------------------------------ rounds
    def seed_round(self, rdir: Path, timer: StepTimer) -> dict:
        """Round 0: the k-shot seeds are the first batch; train on them (or start from
        student.init_weights) and take the student's feedback on them."""
        rec = self._record(0)
        rows = [rounds.BatchRow(e.id, e.text, e.label, "seed", 0, "ok") for e in self.seeds]
        batch = in_run(write_batch, self.run_dir)([r.__dict__ for r in rows], rdir / "batch.parquet")
        init = _init_weights(self.config)
        with timer("train"):
            if init:
                self.weights = init
            else:
                seeds = read_rows(batch)
                trained = self.train({}, seeds, rounds.train_steps(len(seeds), self.config.train),
                                     self.config.seed, rdir)
                self.weights = {"path": trained["path"], "sha": trained["sha"]}
                rec.update(train_loss=trained["losses"][-1], train_examples=trained["n_examples"],
                           train_steps=len(trained["losses"]),
                           precision=trained.get("precision"))
        with timer("feedback"):
            self.feedback = self.feedback_on(batch, rdir)
        return self._close(rec, batch, self.feedback)

    def teacher_round(self, r: int, rdir: Path, timer: StepTimer) -> dict:
        """Rounds 1..: [1]-[5] of the module doc."""
        rec, cfg = self._record(r), self.config
        with timer("generate"):
            texts = self.new_texts(r, rdir, rec)
        seen = {text_key(x["text"]) for x in self.earlier_rows()}
        rows = rounds.new_rows(texts or [], seen, r, cfg.evokd.max_text_chars)
        with timer("label"):
            rows = self.label(rows, rdir, rec) if texts else rows
        batch = in_run(write_batch, self.run_dir)([x.__dict__ for x in rows], rdir / "batch.parquet")
        with timer("feedback"):  # the current student on the new batch, before training on it
            fb = self.feedback_on(batch, rdir)
        if batch["ok"]:
            replay = rounds.replay_sample(self.earlier_rows(), cfg.train.replay, cfg.seed * 7 + r)
            new = [x for x in read_rows(batch) if x["status"] == "ok"]
            with timer("train"):
                trained = self.train(self.weights, new + replay,
                                     rounds.train_steps(len(new + replay), cfg.train),
                                     cfg.seed * 7 + r, rdir)
            self.weights = {"path": trained["path"], "sha": trained["sha"]}
            rec.update(train_loss=trained["losses"][-1], train_examples=trained["n_examples"],
                       train_steps=len(trained["losses"]),
                       precision=trained.get("precision"))
        self.feedback = fb if fb["n"] else self.feedback
        return self._close(rec, batch, fb)

    def _record(self, r: int) -> dict:
        return {"round": r, "method": self.config.evokd.method, "teacher_calls": 0,
                "teacher_tokens": 0, "cost_usd": 0.0, "analysis": None, "generate_status": None,
                "labels_parsed": None, "train_loss": None, "train_examples": 0, "train_steps": 0,
                "failed": None,
                "prompt_version": prompts.PROMPT_VERSION}

    def _close(self, rec: dict, batch: dict, fb: dict) -> dict:
        self.batches.append(batch)
        rows = read_rows(batch)
        statuses = sorted({x["status"] for x in rows})
        rec.update(new_examples=batch["ok"], batch_ref=batch, weights=dict(self.weights),
                   batch_statuses={s: sum(x["status"] == s for x in rows) for s in statuses},
                   feedback_accuracy=fb["correct"] / fb["n"] if fb["n"] else None)
        return rec

    # ------------------------------------------------------------------ budget
    def stop_reason(self, next_round: int) -> str | None:
        """Why no round `next_round` runs (rounds done, kshot, a failure, a budget), or None."""
        cfg = self.config
        if self.records and self.records[-1]["failed"]:
            return f"stopped in round {next_round - 1}: {self.records[-1]['failed']}"
        if cfg.evokd.method == "kshot":
            return "method kshot: the seeds only, no teacher round"
        if next_round >= cfg.rounds:
            return f"finished {cfg.rounds} rounds"
        spent = Usage(sum(x["teacher_tokens"] for x in self.records),
                      sum(x["cost_usd"] for x in self.records))
        est, basis = self.estimate()
        why = Budget.from_config(cfg).refusal(spent, est)
        if why is None:
            return None
        return (f"stopped before round {next_round}: budget: the round would spend an "
                f"estimated {est.teacher_tokens:,.0f} teacher tokens / ${est.cost_usd:.4f} "
                f"({basis}); {why}")

    def estimate(self) -> tuple[Usage, str]:
        """Next round's teacher spend: the mean of the teacher rounds so far, else a priori
        (calls × (prompt tokens of the method's first request + completion estimate))."""
        done = [x for x in self.records if x["teacher_calls"]]
        if done:
            return (Usage(sum(x["teacher_tokens"] for x in done) / len(done),
                          sum(x["cost_usd"] for x in done) / len(done)),
                    f"measured: mean of {len(done)} teacher round(s)")
        from elad_core.teacher_client import TeacherClient

        ev, tc = self.config.evokd, self.config.teacher
        client = TeacherClient.from_config(tc.model_copy(update={"api_key_env": None}), None)
        first = (rounds.analyse_request(self.kind, self.task_text, self.labels,
                                        *rounds.pick_shown(read_rows(self.feedback),
                                                           ev.show_right, ev.show_wrong, 0))
                 if ev.method == "evokd" else
                 rounds.static_request(self.kind, self.task_text, self.labels, self.seeds,
                                       ev.per_round) if ev.method == "static" else
                 rounds.label_request(self.kind, self.task_text, self.labels,
                                      [self.seeds[i % len(self.seeds)].text
                                       for i in range(ev.per_round)]))
        calls = TEACHER_CALLS[ev.method]
        prompt = calls * client.count_prompt_tokens(first)
        completion = calls * tc.completion_tokens_estimate
        return (Usage(prompt + completion, client.price_usd(prompt, completion)),
                f"a priori: {calls} call(s) of ~{prompt // max(1, calls)} prompt + "
                f"{tc.completion_tokens_estimate} completion tokens")


@flow(name="evokd-distillation")
def evokd_distillation(config: EvoKDConfig) -> dict:
    """Run one EvoKD job (or a baseline, `evokd.method`); returns the summary (also on disk)."""
    t0, sent0, replayed0 = time.perf_counter(), REQUESTS_SENT.value, REPLAYED.value
    logger = get_run_logger()
    run_dir = config.run_dir.resolve()
    sources = evokd_preflight(config)  # bad data / options / key: one line, nothing written
    data = in_run(prepare_evokd_data, run_dir)(config.data.model_dump(mode="json"), sources,
                                               config.seed, run_dir)
    given = [x["text"] for p in sorted(run_dir.glob("round_*/batch.parquet"))
             for x in read_parquet(p)]

    def judge() -> EvoKDOracleJudge:  # the simulated teacher, only for teacher "oracle"
        return EvoKDOracleJudge(_examples(data["reserve"]), data["kind"],
                                known=_examples(data["seeds"]), given=given, seed=config.seed)

    stopped = ""
    with evokd_teacher_endpoint(config.teacher, judge, run_dir / "oracle_requests.jsonl") as api:
        run = EvoKDRun(config, data, api)
        for r in range(config.rounds):
            rdir, timer, t_round = run_dir / f"round_{r:03d}", StepTimer(), time.perf_counter()
            rec = run.seed_round(rdir, timer) if r == 0 else run.teacher_round(r, rdir, timer)
            run.records.append(rec)
            stopped = run.stop_reason(r + 1) or ""
            rec["f1"] = rec["accuracy"] = None
            if config.eval.every_round or stopped:  # [6] (the last round always)
                with timer("evaluate"):
                    rec["eval"] = run.evaluate(rdir)
                rec.update(f1=rec["eval"]["f1"], accuracy=rec["eval"].get("accuracy"))
            rec.update(step_wall_s=timer.wall_s, wall_s=time.perf_counter() - t_round,
                       config=config.model_dump(mode="json"))
            outputs = {"batch": rec["batch_ref"]["sha"], "weights": run.weights.get("sha"),
                       "eval": rec.get("eval"), "analysis": rec["analysis"]}
            in_run(publish_evokd_round, run_dir)(config.run_name, rdir, outputs,
                                                 {k: v for k, v in rec.items() if k != "eval"})
            logger.info("round %d (%s): %d new examples, %d teacher tokens, f1 %s", r,
                        rec["method"], rec["new_examples"], rec["teacher_tokens"], rec["f1"])
            if stopped:
                break
    if "budget" in stopped or "failed" in stopped:
        logger.warning(stopped)
    return _summary(config, run, stopped, t0, sent0, replayed0)


def _summary(config: EvoKDConfig, run: EvoKDRun, stopped: str, t0: float, sent0: int,
             replayed0: int) -> dict:
    keep = ("round", "method", "new_examples", "batch_statuses", "teacher_calls",
            "teacher_tokens", "cost_usd", "generate_status", "labels_parsed",
            "feedback_accuracy", "train_examples", "train_steps", "train_loss", "f1", "accuracy",
            "wall_s")
    rows, total = [], 0
    for rec in run.records:
        total += rec["teacher_tokens"]
        rows.append({**{k: rec.get(k) for k in keep}, "cumulative_teacher_tokens": total})
    last = run.records[-1]
    summary = {
        "run_name": config.run_name, "method": config.evokd.method, "task": config.data.task,
        "k_shot": config.data.k_shot, "seed": config.seed, "rounds": rows, "stopped": stopped,
        "final": {**{k: v for k, v in last.get("eval", {}).items() if k != "wall_s"},
                  "round": last["round"]},
        "teacher_tokens": total, "cost_usd": round(sum(x["cost_usd"] for x in run.records), 6),
        "train_examples_total": sum(x["new_examples"] for x in run.records),
        "prompt_version": prompts.PROMPT_VERSION,
        "teacher_requests_sent": REQUESTS_SENT.value - sent0,
        "teacher_replies_replayed": REPLAYED.value - replayed0,
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    publish_evokd_run(config.run_name, run.run_dir, summary)
    return summary
