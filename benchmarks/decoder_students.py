"""Decoder students from SmolLM2-135M: the engine's searched student against layer-drop trained
without a teacher and a uniform shrink, at equal training FLOPs, on held-out text, over seeds.

Stage 1 is `nas quickstart --family decoder` itself (timed): one supernet over the derived space,
trained on cached top-64 teacher distributions, a search of next-token loss under half the
teacher's FLOPs, the chosen student exported (export checked by greedy generation against the
supernet) and distilled on its own. The searched architecture at the quickstart's budget (1/2) is
the best trial of that search; at every other budget, of a search of the same supernet under that
budget (same trial count and proxy, `WORK/search-1-R.db`).

Budgets: 1/2 and 1/4 of the teacher's FLOPs at 1 x 64 tokens. Arms, each trained for the same
training FLOPs as the engine counts them (3x the student's forward per token, plus the teacher's
forward when distilling; the teacher-free arms therefore get more steps):
- searched_kl / searched_kl_lm: the searched architecture from the supernet's weights, distilled
  (`nas distill --student`) with forward KL, or forward KL plus the next-token loss on the text at
  equal weight (`train.loss.lm_weight: 1`, fixed before its first run; the packaged decoder
  config's default since); searched_atkd / searched_rel_atkd (at 1/2 only): the same with ATKD,
  or relation KD + ATKD;
- first / every_other: the teacher's first N layers, or every other layer, at full width, N the
  most that fit, trained on next-token loss without a teacher (Jha et al. 2023); at 1/4 only one
  layer fits, so the two are the same network and only `first` runs;
- uniform: the member within 5% below the budget whose depth, width and FFN ratios to the teacher
  are most nearly equal, from the teacher's slice (uniform layer policy), distilled with forward KL.
Seeds change the order of the training rows. Not equalised: the searched arms also had the
supernet's training (its FLOPs are reported), and they were chosen on the held-out rows the
search scores (never the test rows below).

Test text: the run's held-out rows (never trained on) after the first search.eval_batches x
batch_size (here 32), which the search and the training's evaluation read: --test-rows rows of 64
tokens of movie reviews. Reported: test perplexity, top-1 agreement with the teacher's next token,
and the teacher's own perplexity; the top-k cache's error against full logits on the first 16 test rows (KL(full ||
rebuilt), nats per token).

Pass rule, fixed before the run: at 1/2, the searched student's (forward KL) perplexity within
2x the teacher's, and ahead of first, every_other and uniform with the 95% t-interval of the
paired log-perplexity difference (over seeds) below zero. The summary applies it to searched_kl
and searched_kl_lm at 1/2 for every step count and every cache k ("pass" per label; the
top-level "pass" is the first rule: searched_kl at the default steps). An arm under another k
(`--top-k`) is paired with the same baseline runs: the teacher-free arms read no cache, and
`uniform` keeps the k it ran with unless it is run under that k too.

A setting of the engine's student is chosen on dev rows, never on the test rows: `--rows dev`
scores on the held-out rows after the test rows (`--dev-rows`, none of them trained on or read by
the search) and keeps those runs apart (`dev_runs`, `dev_summary`); `--lm-weight W` sets the
next-token weight of the forward KL + next-token arm, which then runs as `ARM_lm<W>`, and `--lr`
the arms' learning rate (`ARM_lr<LR>`, the teacher-free arms' too). A model
already trained for the same key under the other rows is scored, not trained again (its training
record is copied), so the setting chosen on dev costs no retraining for the seed it was chosen with.

Resumable: every finished (budget, arm, seed) is kept in WORK/results.json; the results JSON in
benchmarks/results/ is rewritten after each. `--steps N` other than the default 100 is a
compute lever on the same run: its runs are kept under the budget `1/R@N` beside the default's
(every arm again gets equal FLOPs, now N distilled steps' worth) and never replace them. Once
stages 1 and 2 (quickstart, searches) are done, two processes may share WORK running other arms
(`--arms`): each saves under a lock, merging the other's finished runs.

    python benchmarks/decoder_students.py [--work runs/bench-decoder] [--seeds 3] [--steps 100] [--name NAME]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import platform
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from evidence import log, merge_json, save_results, t_interval

from search_spaces import uniformity

BUDGETS = (2, 4)
PASS_BUDGET = "1/2"  # the budget the pass rule is judged at, whichever budgets a process runs
DEFAULT_STEPS = 100
# The engine's students the pass rule is applied to: forward KL (the first default) and forward KL
# plus the next-token loss (the packaged decoder config's default since).
ENGINE_ARMS = ("searched_kl", "searched_kl_lm")
# The arms' teacher cache. A distilled arm run under another k is another arm, `ARM_k<k>` (its own
# key and folder, an engine arm if ARM is one); the teacher-free arms read no cache and keep theirs.
DEFAULT_TOP_K = 256
# Every arm's loss in full, whatever the quickstart config's own loss is.
LOSSES = {
    "kl": {"relation": {"weight": 0.0}, "logits": "forward_kl", "lm_weight": 0.0},
    "atkd": {"relation": {"weight": 0.0}, "logits": "atkd", "lm_weight": 0.0},
    "rel_atkd": {"relation": {"weight": 1.0}, "logits": "atkd", "lm_weight": 0.0},
    "kl_lm": {"relation": {"weight": 0.0}, "logits": "forward_kl", "lm_weight": 1.0},
    "lm": {"kind": "lm", "relation": {"weight": 0.0}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-decoder"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="run only this seed (< --seeds), so that two "
                        "processes sharing WORK can take one seed each")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="distillation steps of a distilled 1/2 arm; "
                                                               "sets the FLOPs every arm of a budget gets")
    parser.add_argument("--test-rows", type=int, default=128)
    parser.add_argument("--rows", choices=["test", "dev"], default="test", help="score on the test rows, or on "
                        "the dev rows after them (to choose a setting; kept apart in dev_runs)")
    parser.add_argument("--dev-rows", type=int, default=256)
    parser.add_argument("--lm-weight", type=float, default=None, help="the next-token weight of the KL + "
                        "next-token arm (default 1); another weight names the arm ARM_lm<W>")
    parser.add_argument("--lr", type=float, default=None, help="the arms' learning rate (default the quickstart "
                        "config's student.lr, or its train.lr); another rate names them ARM_lr<LR>")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="the arms' teacher cache: top-k "
                        "log-probabilities per token (the quickstart's own run keeps its config's k); another k "
                        "than the default names the distilled arms ARM_k<k>")
    parser.add_argument("--budgets", default="2,4", help="budget ratios (teacher FLOPs / budget); the first gets "
                                                         "the loss arms and the pass rule")
    parser.add_argument("--arms", nargs="+", default=None, choices=["searched_kl", "searched_atkd",
                        "searched_rel_atkd", "searched_kl_lm", "first", "every_other", "uniform"],
                        help="run only these arms (e.g. searched_kl first); default every arm, in the order below")
    parser.add_argument("--name", default="decoder_students", help="the results file, benchmarks/results/NAME.json: "
                        "another WORK (another quickstart config, say) writes its own, never over another's")
    args = parser.parse_args()
    global BUDGETS
    BUDGETS = tuple(float(x) if "." in x else int(x) for x in args.budgets.split(","))

    import torch

    from nas.config import parse_config
    from nas.distill import distill
    from nas.export import best_under, export
    from nas.quickstart import quickstart
    from nas.run import load_data, open_run
    from nas.search.study import run_search, study_name
    from search_spaces import Arch, flops, layer_indices
    from supernet.hf_models import MODEL_CLASS
    from supernet.teacher_cache import approximation_kl
    from supernet.teachers import load_teacher
    from supernet.train import step_flops

    torch.manual_seed(0)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done_path = work / "results.json"
    state: dict[str, Any] = json.loads(done_path.read_text()) if done_path.is_file() else {"runs": {}}
    out_name = args.name

    finished: dict[str, Any] = {}  # the runs this process trained (or scored)
    records = "dev_runs" if args.rows == "dev" else "runs"  # where they go
    other_records = "runs" if args.rows == "dev" else "dev_runs"

    def save() -> None:
        # Two processes may share WORK once stages 1-2 are done, each running other arms: under
        # a lock, the runs on disk (the other's included) with this process's own laid over them.
        with open(work / ".results.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            disk = json.loads(done_path.read_text()) if done_path.is_file() else {}
            for name in ("runs", "dev_runs"):
                state[name] = {**disk.get(name, {}), **state.get(name, {})}
            state[records] = {**state[records], **finished}
            merge_json(done_path, state)
        report = {"benchmark": "decoder_students", "args": vars(args) | {"work": str(work)},
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads", **state,
                  "summary": report_summary(state, "test")}
        if state["dev_runs"]:  # choices of a setting, on the dev rows: no pass rule applies
            report["dev_summary"] = report_summary(state, "dev")
            report["dev_summary"].pop("pass")
        save_results(out_name, report)

    # -- stage 1: the quickstart, timed ---------------------------------------------------
    qs_dir = work / "quickstart"
    if "quickstart" not in state:
        s = time.perf_counter()
        qs = quickstart("decoder", qs_dir, progress=False)
        state["quickstart"] = {
            "wall_s": time.perf_counter() - s, "stage_seconds": qs.stage_seconds, "front_size": len(qs.front),
            "chosen": qs.student_point.arch if qs.student_point else None,
            "chosen_objectives": qs.student_point.objectives if qs.student_point else None,
            "export_parity": qs.export_parity, "samples": qs.samples, "budget_flops": qs.budget_flops,
        }
        save()
        log(f"quickstart: {state['quickstart']['wall_s'] / 60:.1f} min, export parity {qs.export_parity}")
    # The quickstart's config, kept apart: a search under another budget (below) saves its own
    # config (storage, budget) into the run directory, and this one must stay the quickstart's.
    qs_config = work / "quickstart-config.yaml"
    if not qs_config.is_file():
        shutil.copyfile(qs_dir / "config.yaml", qs_config)
    config = parse_config(yaml.safe_load(qs_config.read_text()))
    run = open_run(config, save_config=False)
    teacher_arch = run.space.teacher
    seq_len = config.data.seq_len
    cost = lambda a: flops(a, 1, seq_len)  # noqa: E731
    data = load_data(run)

    # -- stage 2: the teacher on the test rows, and the cache's error ---------------------
    skip = max(config.search.eval_batches, config.train.eval_batches) * config.train.batch_size
    n_held = data.held_out["input_ids"].shape[0]
    if n_held <= skip:
        raise SystemExit(f"data: {n_held} held-out rows, the first {skip} of which the search reads; none to test on")
    test_rows = torch.arange(skip, min(n_held, skip + args.test_rows))
    dev_rows = torch.arange(skip + len(test_rows), min(n_held, skip + len(test_rows) + args.dev_rows))
    if args.rows == "dev" and len(dev_rows) == 0:
        raise SystemExit(f"--rows dev: {n_held} held-out rows, all of them read by the search or the test")
    # The rows this process scores the arms on; the teacher's test record is kept whichever they are.
    rows = dev_rows if args.rows == "dev" else test_rows
    scored = data.batch("held_out", rows)
    teacher_model = load_teacher(config.teacher.id).eval()

    @torch.no_grad()
    def score(model: Any, reference: torch.Tensor | None) -> tuple[float, float, torch.Tensor]:
        """(perplexity, top-1 agreement with `reference`, argmax tokens) over the scored rows."""
        nll, agree, count, tops = 0.0, 0, 0, []
        for lo in range(0, len(rows), 16):
            ids = scored["input_ids"][lo:lo + 16]
            logits = model(input_ids=ids).logits[:, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                           ids[:, 1:].reshape(-1), reduction="sum"))
            top = logits.argmax(-1)
            tops.append(top)
            if reference is not None:
                agree += int((top == reference[lo:lo + 16]).sum())
            count += top.numel()
        return math.exp(nll / count), agree / count, torch.cat(tops)

    ppl, _, teacher_top = score(teacher_model, None)  # one pass: perplexity and the reference tokens
    if args.rows == "dev":
        state["teacher_dev"] = {"ppl": ppl, "dev_rows": [int(rows[0]), int(rows[-1]) + 1]}
    elif "teacher" not in state:
        with torch.no_grad():
            logits = teacher_model(input_ids=scored["input_ids"][:16]).logits
        state["teacher"] = {"ppl": ppl, "test_rows": len(test_rows), "test_tokens": len(test_rows) * (seq_len - 1),
                            "cache_top_k": config.train.teacher_top_k,
                            "cache_kl_nats": {k: approximation_kl(logits, k) for k in (16, 64, 256, 1024)}}
        save()
    log(f"teacher: {args.rows} perplexity {ppl:.2f}; cache error {state.get('teacher', {}).get('cache_kl_nats')}")
    del teacher_model
    # The quickstart's own student (what the command hands a user), scored once on these rows.
    qs_student = qs_dir / "student"
    if f"student_{args.rows}" not in state["quickstart"] and (qs_student / "model.safetensors").is_file():
        qs_ppl, qs_agree, _ = score(MODEL_CLASS["decoder"].from_pretrained(qs_student).eval(), teacher_top)
        distilled = json.loads((qs_student / "distilnas.json").read_text())
        state["quickstart"][f"student_{args.rows}"] = {
            "ppl": qs_ppl, "agree": qs_agree, "distill_steps": distilled["steps"], "lr": distilled.get("lr"),
        }
        save()
        log(f"quickstart's student: {args.rows} perplexity {qs_ppl:.2f}, agreement {qs_agree:.3f}")

    # -- the architectures of each budget --------------------------------------------------
    studies = [study_name(config, sub) for sub in run.space.subspaces]
    archs: dict[str, dict[str, Any]] = {}
    for ratio in BUDGETS:
        budget = cost(teacher_arch) / ratio
        if ratio == config.student.budget_ratio:  # the quickstart's own search, under this budget
            storage = config.storage_url
        else:  # a search of the quickstart's supernet under this budget (same trials, same proxy)
            storage = f"sqlite:///{work / f'search-1-{ratio}.db'}"
            raw = json.loads(json.dumps(config.model_dump(mode="json", by_alias=True)))
            raw["storage"], raw["search"]["budgets"] = storage, {"flops": budget}
            s = time.perf_counter()
            run_search(parse_config(raw), progress=False)  # resumes: runs only the trials still missing
            shutil.copyfile(qs_config, qs_dir / "config.yaml")  # the run's config is the quickstart's again
            state.setdefault("search_wall_s", {}).setdefault(f"1/{ratio}", time.perf_counter() - s)
        point = best_under(storage, ("flops", budget), studies)
        searched_dir = work / f"searched-1-{ratio}"
        export(storage, searched_dir, trial_id=point.trial_id, force=True)  # seconds; always the current best
        depths = range(1, teacher_arch.num_layers + 1)
        fit = max(n for n in depths if cost(teacher_arch.replace(num_layers=n)) <= budget)
        near = [a for a in run.space if 0.95 * budget <= cost(a) <= budget]
        uniform = min(near, key=lambda a: uniformity(a, teacher_arch)) if near else None
        archs[f"1/{ratio}"] = {
            "budget": budget,
            "searched": Arch.from_dict(point.arch),
            "searched_dir": searched_dir,
            "layer_drop": teacher_arch.replace(num_layers=fit),
            "uniform": uniform,
            "searched_trial": point.trial_id,
        }
        state.setdefault("archs", {})[f"1/{ratio}"] = {
            "budget_flops": budget,
            "searched": point.arch,
            "searched_flops": cost(Arch.from_dict(point.arch)),
            "searched_proxy_lm_loss": point.objectives.get("lm_loss"),
            "layer_drop_layers": fit,
            "layer_drop_flops": cost(teacher_arch.replace(num_layers=fit)),
            "first_layers": layer_indices("first", fit, teacher_arch.num_layers),
            "every_other_layers": layer_indices("every_other", fit, teacher_arch.num_layers),
            "uniform": uniform.to_dict() if uniform else None,
            "uniform_flops": cost(uniform) if uniform else None,
        }
    state["supernet_train_flops"] = supernet_flops(run)
    save()

    def arms(ratio: int) -> list[tuple[str, Arch, str, str | None]]:
        """(arm, architecture, loss, layer policy or None for the searched student's weights)."""
        a = archs[f"1/{ratio}"]
        out = [("searched_kl", a["searched"], "kl", None), ("searched_kl_lm", a["searched"], "kl_lm", None)]
        if ratio == BUDGETS[0]:
            out += [
                ("searched_atkd", a["searched"], "atkd", None),
                ("searched_rel_atkd", a["searched"], "rel_atkd", None),
            ]
        out += [("first", a["layer_drop"], "lm", "first")]
        if a["layer_drop"].num_layers > 1:
            out += [("every_other", a["layer_drop"], "lm", "every_other")]
        if a["uniform"] is not None:
            out += [("uniform", a["uniform"], "kl", "uniform")]
        return out

    batch = config.train.batch_size
    # Order of work, most important first, so a run cut short has the comparison the pass rule
    # needs: the engine's losses and the baselines at the first budget over every seed; then the
    # other budget; then the other loss arms.
    core = (*ENGINE_ARMS, "first", "every_other", "uniform")
    jobs = sorted(((0 if ratio == BUDGETS[0] and job[0] in core else 1 if job[0] in core else 2), seed, ratio, job)
                  for seed in range(args.seeds) if args.seed in (None, seed) for ratio in BUDGETS for job in arms(ratio)
                  if args.arms is None or job[0] in args.arms)
    # Another step count is another experiment: its runs sit beside the default's, never over them.
    steps_tag = "" if args.steps == DEFAULT_STEPS else f"@{args.steps}"
    for _, seed, ratio, (arm, arch, loss, layers) in jobs:
        if loss != "lm" and args.top_k != DEFAULT_TOP_K:
            arm = f"{arm}_k{args.top_k}"
        if loss == "kl_lm" and args.lm_weight is not None and args.lm_weight != LOSSES["kl_lm"]["lm_weight"]:
            arm = f"{arm}_lm{args.lm_weight:g}"
        if args.lr is not None and args.lr != config.distill_train.lr:
            arm = f"{arm}_lr{args.lr:g}"
        key = f"1/{ratio}{steps_tag}/{arm}/{seed}"
        if key in state.get(records, {}) and state[records][key]["arch"] == arch.id:
            continue  # done (a run of another architecture, from an earlier search, is redone)
        a = archs[f"1/{ratio}"]
        # The FLOPs every arm of this budget gets: --steps distilled steps of a student at the budget.
        flops_budget = args.steps * batch * (3 * a["budget"] + cost(teacher_arch))
        teacher = None if loss == "lm" else teacher_arch
        steps = max(1, round(flops_budget / step_flops([arch], teacher, batch, seq_len, 1)))
        raw = json.loads(json.dumps(config.model_dump(mode="json", by_alias=True)))
        raw["train"]["seed"] = seed
        raw["train"]["teacher_top_k"] = args.top_k
        raw["train"]["loss"] = {**raw["train"]["loss"], **LOSSES[loss]}
        if loss == "kl_lm" and args.lm_weight is not None:
            raw["train"]["loss"]["lm_weight"] = args.lm_weight
        if args.lr is not None:
            raw["student"]["lr"] = args.lr  # the rate `nas distill` trains at
        arm_config = parse_config(raw)
        out = work / "arms" / f"1-{ratio}" / arm / (f"seed{seed}-steps{args.steps}" if steps_tag else f"seed{seed}")
        other = state.get(other_records, {}).get(key)
        if other and other["arch"] == arch.id and (out / "model.safetensors").is_file():
            # Trained already for the other rows: score that model; its training record is the same.
            trained = {k: other[k] for k in ("steps", "train_flops", "flops", "arch", "wall_s")}
            trained["scored_only"] = True
        else:
            s = time.perf_counter()
            if layers is None:
                result = distill(arm_config, out, steps, student=a["searched_dir"], force=True)
            else:
                result = distill(arm_config, out, steps, arch=arch, layers=layers, force=True)
            trained = {"steps": steps, "train_flops": result.train_flops, "flops": cost(arch), "arch": arch.id,
                       "wall_s": time.perf_counter() - s}
        model = MODEL_CLASS["decoder"].from_pretrained(out).eval()
        ppl, agree, _ = score(model, teacher_top)
        finished[key] = {"ppl": ppl, "agree": agree, **trained}
        save()
        log(f"{args.rows} {key}: ppl {ppl:.2f}, agreement {agree:.3f}, {trained['steps']} steps, "
            f"{trained['wall_s'] / 60:.1f} min")
    state["wall_s_this_session"] = time.perf_counter() - t0
    save()
    print(table(report_summary(state, args.rows), args.rows))


def supernet_flops(run: Any) -> float:
    from supernet.checkpoint import latest_state

    total = 0.0
    for sub in run.space.subspaces:
        st = latest_state(run.supernet_dir(sub.name))
        total += float(st.get("train_flops", 0.0)) if st else 0.0
    return total


def report_summary(state: dict[str, Any], rows: str) -> dict[str, Any]:
    """The summary of the runs scored on `rows` ("test" or "dev"), against the teacher on the same rows."""
    if rows == "dev":
        return summarise(state.get("dev_runs", {}), state.get("teacher_dev", {}).get("ppl"))
    return summarise(state.get("runs", {}), state.get("teacher", {}).get("ppl"))


def summarise(runs: dict[str, Any], teacher_ppl: float | None) -> dict[str, Any]:
    """Per label (budget, step count), each arm's mean and std over seeds, and each engine arm's
    paired log-perplexity differences against the others, with the pass rule."""
    out: dict[str, Any] = {}
    # A label is a budget, "1/R", or a budget trained for another step count, "1/R@N".
    labels = sorted({key.rsplit("/", 2)[0] for key in runs}, key=lambda b: (b.split("@")[0], b))
    for label in labels:
        by_arm: dict[str, dict[int, dict[str, Any]]] = {}
        for key, r in runs.items():
            if key.rsplit("/", 2)[0] == label:
                arm, seed = key.rsplit("/", 2)[1:]
                by_arm.setdefault(arm, {})[int(seed)] = r
        rows = {}
        for arm, seeds in by_arm.items():
            ppls = [r["ppl"] for r in seeds.values()]
            agrees = [r["agree"] for r in seeds.values()]
            rows[arm] = {
                "seeds": len(ppls),
                "ppl_mean": statistics.mean(ppls),
                "ppl_std": statistics.stdev(ppls) if len(ppls) > 1 else 0.0,
                "agree_mean": statistics.mean(agrees),
                "ppl_over_teacher": statistics.mean(ppls) / teacher_ppl if teacher_ppl else None,
            }
        out[label] = {"arms": rows}
        for engine_arm in engine_arms(by_arm):  # paired log-perplexity differences, engine arm minus each other arm
            engine = by_arm.get(engine_arm, {})
            diffs = {}
            for arm, seeds in by_arm.items():
                paired = [math.log(engine[s]["ppl"]) - math.log(seeds[s]["ppl"]) for s in seeds if s in engine]
                if arm != engine_arm and paired:
                    mean, lo, hi = t_interval(paired)
                    diffs[arm] = {"log_ppl_diff": mean, "ci95": [lo, hi], "pairs": len(paired)}
            out[label][f"{engine_arm}_minus"] = diffs
            if label.split("@")[0] == PASS_BUDGET:
                out[label].setdefault("pass", {})[engine_arm] = passes(out[label], engine_arm, teacher_ppl)
    # The rule as first fixed: forward KL at the default steps.
    out["pass"] = out.get(PASS_BUDGET, {}).get("pass", {}).get("searched_kl", False)
    return out


def engine_arms(names: Any) -> list[str]:
    """The engine's arms among `names`: ENGINE_ARMS, and each of them under another cache k,
    next-token weight or learning rate."""
    return [n for n in names if re.sub(r"(_k\d+)?(_lm[\d.e+-]+)?(_lr[\d.e+-]+)?$", "", n) in ENGINE_ARMS]


def passes(part: dict[str, Any], engine_arm: str, teacher_ppl: float | None) -> bool:
    """The pass rule on one budget's runs: `engine_arm`'s perplexity within 2x the teacher's, and
    its paired log-perplexity interval below zero against first, every_other and uniform (each
    must have been run)."""
    row = part["arms"].get(engine_arm)
    diffs = part[f"{engine_arm}_minus"]
    return bool(
        row
        and teacher_ppl
        and row["ppl_mean"] <= 2 * teacher_ppl
        and all(b in diffs and diffs[b]["ci95"][1] < 0 for b in ("first", "every_other", "uniform"))
    )


def table(summary: dict[str, Any], rows: str = "test") -> str:
    engines = sorted({e for label, part in summary.items() if label != "pass" for e in engine_arms(part["arms"])})
    lines = [
        f"| budget | arm | seeds | {rows} perplexity (mean +- std) | x teacher | top-1 agreement | "
        + " | ".join(f"{e} - arm, log ppl [95% CI]" for e in engines) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(engines),
    ]
    for label, part in summary.items():
        if label == "pass":
            continue
        for arm, r in part.get("arms", {}).items():
            cells = []
            for engine_arm in engines:
                d = part.get(f"{engine_arm}_minus", {}).get(arm)
                cells.append(f"{d['log_ppl_diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "")
            lines.append(
                f"| {label} | {arm} | {r['seeds']} | {r['ppl_mean']:.1f} +- {r['ppl_std']:.1f} | "
                f"{r['ppl_over_teacher']:.2f} | {r['agree_mean']:.3f} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
