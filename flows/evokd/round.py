"""One EvoKD round (docs/design.md §2.5) as cached Prefect tasks; reads as the algorithm.

Round 0 trains the student on the k-shot seeds (or starts from `student.init_weights`).
Each later round (method `evokd`):
  [1] feedback: the student's right / wrong predictions on the latest batch, taken before
      it trained on that batch (`elad_core.evokd.rounds`)
  [2] analyse (teacher)   [3] generate n_hard + n_easy texts (teacher, same conversation)
  [4] label the new texts (teacher, a separate call)
  [5] continue training on the new batch + a replay sample of earlier batches
  [6] evaluate on the fixed test subset (flows/evokd/loop.py: every round, or the last)
Baselines run through the same steps: `static` (one generate call shown only the seeds),
`random` (reserve draws labelled by the teacher), `kshot` (round 0 only).
The round's record (its manifest) is built by elad_core.evokd.round_record.
"""

from __future__ import annotations

from pathlib import Path

from elad_core.errors import ConfigError
from elad_core.evokd import prompts, rounds
from elad_core.evokd import round_record as rec_
from elad_core.evokd.round_record import EvoKDRound
from elad_core.evokd.state import BatchRef, EvoKDData, FeedbackRef, StudentSpec, TrainedRef
from elad_core.evokd.config import EvoKDConfig
from elad_core.evokd.datasets import DESCRIPTIONS, TaskExample, text_key
from elad_core.files import hash_dir
from elad_core.refs import FileRef
from elad_core.seeds import derive_seed
from elad_core.timing import StepTimer
from tasks import in_run
from tasks.evokd.prepare import read_rows, write_batch
from tasks.evokd.student import evaluate_evokd, feedback_on_batch, train_evokd
from tasks.evokd.teacher import teacher_call
from tasks.teacher import with_retry_policy


def examples(ref: FileRef) -> list[TaskExample]:
    """The TaskExamples of a data parquet written by prepare_evokd_data."""
    return [TaskExample(r["id"], r["text"], r["label"], r["source"]) for r in read_rows(ref)]


class EvoKDRun:
    """The state one flow run carries from round to round (refs and records, no models) and
    the steps of a round."""

    def __init__(self, config: EvoKDConfig, data: EvoKDData, api_base: str | None):
        self.config, self.data, self.api_base = config, data, api_base
        self.run_dir = config.run_dir.resolve()
        self.kind, self.labels = data.kind, data.labels
        self.task_text = config.data.task_description or DESCRIPTIONS[config.data.task]
        self.student = _student(config)
        self.seeds, self.reserve = examples(data.seeds), examples(data.reserve)
        self.weights: FileRef | None = None  # None: the base student
        self.batches: list[BatchRef] = []  # round order
        self.feedback: FeedbackRef | None = None  # the student's on the latest batch
        self.records: list[EvoKDRound] = []
        self.teacher_key = config.teacher.reply_key(prompts.PROMPT_VERSION)
        self.teacher_task = with_retry_policy(in_run(teacher_call, self.run_dir), config.teacher)

    # ------------------------------------------------------------------ rounds
    def seed_round(self, rdir: Path, timer: StepTimer) -> EvoKDRound:
        """Round 0: the k-shot seeds are the first batch; train on them (or start from
        student.init_weights) and take the student's feedback on them."""
        rec = EvoKDRound(round=0, method=self.config.evokd.method,
                         prompt_version=prompts.PROMPT_VERSION)
        rows = [rounds.BatchRow(e.id, e.text, e.label, "seed", 0, "ok") for e in self.seeds]
        batch = in_run(write_batch, self.run_dir)([r.__dict__ for r in rows], rdir / "batch.parquet")
        init = _init_weights(self.config)
        with timer("train"):
            if init:
                self.weights = init
            else:
                seeds = read_rows(batch)
                trained = self.train(None, seeds, rounds.train_steps(len(seeds), self.config.train),
                                     derive_seed(self.config.seed, "train", 0), rdir)
                self.weights = FileRef.of(trained.model_dump())
                rec.add_training(trained)
        with timer("feedback"):
            self.feedback = self.feedback_on(batch, rdir)
        return self._close(rec, batch, self.feedback)

    def teacher_round(self, r: int, rdir: Path, timer: StepTimer) -> EvoKDRound:
        """Rounds 1..: [1]-[5] of the module doc."""
        cfg = self.config
        rec = EvoKDRound(round=r, method=cfg.evokd.method, prompt_version=prompts.PROMPT_VERSION)
        with timer("generate"):  # [1]-[3]
            texts = self.new_texts(r, rdir, rec)
        seen = {text_key(x["text"]) for x in self.earlier_rows()}
        rows = rounds.new_rows(texts or [], seen, r, cfg.evokd.max_text_chars)
        with timer("label"):  # [4]
            rows = self.label(rows, rdir, rec) if texts else rows
        batch = in_run(write_batch, self.run_dir)([x.__dict__ for x in rows], rdir / "batch.parquet")
        with timer("feedback"):  # the current student on the new batch, before training on it
            fb = self.feedback_on(batch, rdir)
        if batch.ok:  # [5]
            replay = rounds.replay_sample(self.earlier_rows(), cfg.train.replay,
                                           derive_seed(cfg.seed, "replay", r))
            new = [x for x in read_rows(batch) if x["status"] == "ok"]
            with timer("train"):
                trained = self.train(self.weights, new + replay,
                                     rounds.train_steps(len(new + replay), cfg.train),
                                     derive_seed(cfg.seed, "train", r), rdir)
            self.weights = FileRef.of(trained.model_dump())
            rec.add_training(trained)
        self.feedback = fb if fb.n else self.feedback
        return self._close(rec, batch, fb)

    def _close(self, rec: EvoKDRound, batch: BatchRef, fb: FeedbackRef) -> EvoKDRound:
        self.batches.append(batch)
        return rec.close(batch, read_rows(batch), fb, self.weights)

    # ------------------------------------------------------------------ texts of a round
    def new_texts(self, r: int, rdir: Path, rec: EvoKDRound) -> list[tuple[str, str]] | None:
        """[2]-[3] (or the baseline's stand-in): (text, origin) pairs; None if a call failed."""
        ev, cfg = self.config.evokd, self.config
        if ev.method == "random":
            seen = {text_key(x["text"]) for x in self.earlier_rows()}
            draw = rounds.random_draw(self.reserve, seen, ev.per_round,
                                      derive_seed(cfg.seed, "random_draw", r))
            return [(t, "random") for t in draw]
        if ev.method == "static":
            reply = self.call(rec, "static", rounds.static_request(
                self.kind, self.task_text, self.labels, self.seeds, ev.per_round), rdir)
            if reply is None:
                return None
            texts, rec.generate_status = prompts.parse_static(reply, ev.per_round)
            return [(t, "static") for t in texts]
        right, wrong = rounds.pick_shown(read_rows(self.feedback), ev.show_right, ev.show_wrong,
                                         derive_seed(cfg.seed, "shown", r))
        ask = rounds.analyse_request(self.kind, self.task_text, self.labels, right, wrong)
        analysis = self.call(rec, "analyse", ask, rdir)
        if analysis is None:
            return None
        rec.analysis = analysis
        reply = self.call(rec, "generate", prompts.generate_messages(
            ask, analysis, ev.n_hard, ev.n_easy), rdir)
        if reply is None:
            return None
        hard, easy, rec.generate_status = prompts.parse_generated(reply, ev.n_hard, ev.n_easy)
        return [(t, "hard") for t in hard] + [(t, "easy") for t in easy]

    def label(self, rows: list[rounds.BatchRow], rdir: Path,
              rec: EvoKDRound) -> list[rounds.BatchRow]:
        """[4] the teacher labels the new texts (one call for the batch)."""
        texts = [x.text for x in rows if x.status == "unlabelled"]
        if not texts:
            return rows
        reply = self.call(rec, "label", rounds.label_request(self.kind, self.task_text,
                                                              self.labels, texts), rdir)
        got = (prompts.parse_labels(reply, self.kind, texts, self.labels) if reply is not None
               else [None] * len(texts))
        rec.labels_parsed = sum(y is not None for y in got)
        return rounds.with_labels(rows, got)

    # ------------------------------------------------------------------ tasks
    def call(self, rec: EvoKDRound, step: str, messages: list[dict], rdir: Path) -> str | None:
        """One teacher call, booked on `rec`: the reply's text; None when it failed
        permanently."""
        res = self.teacher_task(step, messages, self.teacher_key, self.config.teacher,
                                self.api_base, rdir / f"teacher_{step}.json",
                                run=str(self.run_dir))
        return res["text"] if rec.add_teacher_call(step, res) else None

    def earlier_rows(self) -> list[dict]:
        return [row for b in self.batches for row in read_rows(b)]

    def train(self, init: FileRef | None, rows: list[dict], steps: int, seed: int,
              rdir: Path) -> TrainedRef:
        out = rdir / ("adapter" if self.config.student.mode == "lora" else "model")
        return in_run(train_evokd, self.run_dir)(
            self.student, self.kind, self.labels, init,
            [{"text": r["text"], "label": r["label"]} for r in rows],
            self.config.train.model_dump(mode="json"), steps, seed, out)

    def feedback_on(self, batch: BatchRef, rdir: Path) -> FeedbackRef:
        return in_run(feedback_on_batch, self.run_dir)(
            self.student, self.kind, self.labels, self.weights, batch, rdir / "feedback.parquet")

    def evaluate(self, rdir: Path) -> dict:
        return in_run(evaluate_evokd, self.run_dir)(
            self.student, self.kind, self.labels, self.weights, self.data.eval,
            self.config.eval.batch_size, rdir / "eval.json")

    # ------------------------------------------------------------------ budget
    def estimate(self):
        """Next round's teacher spend (usage, basis): the mean of the teacher rounds so far,
        else a priori from the prompt tokens of the method's first request."""
        measured = rec_.measured_round_usage(self.records)
        if measured is not None:
            n = sum(1 for x in self.records if x.teacher_calls)
            return measured, f"measured: mean of {n} teacher round(s)"
        from elad_core.teacher.pricing import pricing_client

        ev, tc = self.config.evokd, self.config.teacher
        client = pricing_client(tc)
        first = (rounds.analyse_request(self.kind, self.task_text, self.labels,
                                        *rounds.pick_shown(read_rows(self.feedback),
                                                           ev.show_right, ev.show_wrong, 0))
                 if ev.method == "evokd" else
                 rounds.static_request(self.kind, self.task_text, self.labels, self.seeds,
                                       ev.per_round) if ev.method == "static" else
                 rounds.label_request(self.kind, self.task_text, self.labels,
                                      [self.seeds[i % len(self.seeds)].text
                                       for i in range(ev.per_round)]))
        return rec_.a_priori_round_usage(ev.method, client.count_prompt_tokens(first),
                                         tc.completion_tokens_estimate, client.price_usd)


def _student(config: EvoKDConfig) -> StudentSpec:
    """What the student tasks need (and are cached on): base path + content hash, mode."""
    from elad_core.evokd.student import resolve_model

    sc = config.student
    base = resolve_model(sc.model)
    return StudentSpec(base=base, base_sha=hash_dir(Path(base)) if Path(base).is_dir() else base,
                       mode=sc.mode, device=sc.device, max_length=sc.max_length, bf16=sc.bf16,
                       num_threads=sc.num_threads)


def _init_weights(config: EvoKDConfig) -> FileRef | None:
    path = config.student.init_weights
    if path and not Path(path).is_dir():
        raise ConfigError(f"option 'student.init_weights': {path} is not a folder")
    return FileRef(path=str(Path(path).resolve()), sha=hash_dir(Path(path))) if path else None
