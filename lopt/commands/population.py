"""`lopt meta-train population=...`: population self-training (Metz, Freeman, Maheswaranathan,
Sohl-Dickstein 2021, Training learned optimizers with randomly initialized learned optimizers,
arXiv:2101.07367) with population-based training (Jaderberg et al. 2017, arXiv:1711.09846).

The loop holds the PBT side on the host (assignments, the PBT key, the event log) and drives an
`Engine` (members in this process, or Ray actors) one outer iteration at a time. Every
`exploit_every` iterations two members are drawn and scored on the evaluation tasks (`eval.*`,
scored as `lopt evaluate suite=...` scores them; the population's score is the mean over the tasks
of `population.score`), and the loser takes the winner's theta and outer optimizer. Every
`eval.every` iterations every member is evaluated (the figure's points). Everything random flows
from `seed`, and the whole population is checkpointed, so a killed run resumes exactly.

Writes, beside config.yaml: metrics.jsonl (population records), events.jsonl (the PBT events),
members/<i>/metrics.jsonl (member i's records, as meta-train writes them; one W&B run per member,
grouped), checkpoints/, final_theta/ (the best member at the last evaluation), population.png.
"""
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from lopt import checkpoint, distributed, figures, resume
from lopt.commands.base import Job
from lopt.errors import UserError
from lopt.evaluation import periodic
from lopt.meta_trainer import OuterStep
from lopt.population import pbt
from lopt.population.engine import Engine, LocalEngine, PopulationState
from lopt.population.member import MemberProgram, member
from lopt.population.settings import SELF, PopulationSettings
from lopt.results import trim_records
from lopt.tracking import NullTracker, Tracker

EVENT_COLUMNS = ["outer_iteration", "winner", "loser", "winner_score", "loser_score", "outer", "trunc_length",
                 "reassigned", "resampled"]


def program(c: Any) -> MemberProgram:
    """The member program of a meta-train run's components `c` (their `population` set)."""
    return MemberProgram(c.trainer, c.population.outer == SELF, c.population.max_update)


def initial_state(prog: MemberProgram, p: PopulationSettings, seed: int) -> PopulationState:
    """The population at iteration 0: assignments (`pbt.initial`), random members, snapshots of
    their trainers' thetas, the PBT key; all from `seed`."""
    k_assign, k_members, k_pbt = jax.random.split(jax.random.PRNGKey(seed), 3)
    assignments = pbt.initial(k_assign, p.size, p.trunc_lengths)
    outer = jnp.asarray(assignments.outer, jnp.int32)
    members = jax.jit(prog.initial, static_argnums=1)(k_members, p.size, outer)
    return PopulationState(members, member(members.theta, outer), outer,
                           jnp.asarray(assignments.trunc_length, jnp.int32), k_pbt, jnp.zeros((), jnp.int32))


def member_records(report: OuterStep, size: int) -> list[dict[str, float]]:
    """Per member, the logged values of an outer iteration (`metric_record`'s), in one transfer."""
    values = jax.device_get({"outer/loss": report.meta_loss, **report.metrics})
    return [{k: float(v[i]) for k, v in values.items()} for i in range(size)]


def _restore(run_dir: Path, cfg: DictConfig, like: Any, outer_iterations: int) -> PopulationState | None:
    """The latest checkpointed population in `run_dir` (None if none), after checking the config."""
    if not (run_dir / "checkpoints").is_dir():
        return None
    ckpt = checkpoint.Checkpointer(run_dir / "checkpoints")
    try:
        last = ckpt.latest_step()
        if last is None:
            return None
        resume.check_config(run_dir, cfg)
        if last > outer_iterations:
            raise UserError(f"outer_iterations={outer_iterations} is below the iteration of the run's latest "
                            f"checkpoint, {ckpt.directory / str(last)}: resume with outer_iterations >= {last}.")
        return ckpt.restore(last, like)
    finally:
        ckpt.close()


def make_engine(p: PopulationSettings, prog: MemberProgram, data: Any, state: PopulationState) -> Engine:
    """The backend `population.backend` names, holding `state`'s members."""
    if p.backend == "ray":
        from lopt.population.ray_backend import RayEngine

        return RayEngine(prog, data, state.members, state.trainers, p.ray)
    return LocalEngine(prog, data, state.members, state.trainers)


class Scorer:
    """Evaluates members' thetas on the evaluation tasks; a member's population score is the mean
    over the tasks of `population.score` (its per-task score), cached per iteration."""

    def __init__(self, evaluator: periodic.Evaluator, score: str):
        self.evaluator, self.score = evaluator, score
        self.names = list(evaluator.tasks)
        self._cache: dict[tuple[int, int], tuple[float, dict[str, Any]]] = {}
        self.seconds = 0.0

    def __call__(self, engine: Engine, iteration: int, members: Sequence[int]) -> list[tuple[float, dict[str, Any]]]:
        """Per member, its score and its evaluation record at `iteration` (members' thetas now)."""
        missing = [i for i in members if (iteration, i) not in self._cache]
        for i, theta in zip(missing, engine.thetas(missing)):
            record, _ = self.evaluator(theta)
            self.seconds += record["time/eval_s"]
            value = float(np.mean([record[f"eval/{name}/{self.score}"] for name in self.names]))
            record[f"eval/population/{self.score}"] = value
            self._cache[(iteration, i)] = (value, record)
        self._cache = {k: v for k, v in self._cache.items() if k[0] == iteration}
        return [self._cache[(iteration, i)] for i in members]


@contextmanager
def _member_trackers(job: Job, size: int, group: str) -> Iterator[Sequence[Tracker | NullTracker]]:
    """One tracker per member (members/<i>/metrics.jsonl and a W&B run each, in W&B group
    `group`), finished with the job's exit status (as `Job.tracker`)."""
    if not job.main:
        yield [NullTracker() for _ in range(size)]
        return
    config = cast(dict[str, Any], OmegaConf.to_container(job.cfg, resolve=True))
    trackers: list[Tracker] = []
    try:
        for i in range(size):
            directory = job.dir / "members" / str(i)
            directory.mkdir(parents=True, exist_ok=True)
            trackers.append(job.shared.tracking.open(directory, {**config, "member": i}, "population-member",
                                                     job.console, group))
        yield trackers
    except BaseException as err:
        for t in trackers:
            t.finish(130 if isinstance(err, KeyboardInterrupt) else 1)
        raise
    for t in trackers:
        t.finish(0)


def _trim(run_dir: Path, size: int, start: int) -> dict[str, Any]:
    """Drop the records and events of iterations after `start` (a resumed run logs them again);
    the population's last record kept."""
    for i in range(size):
        trim_records(run_dir / "members" / str(i) / "metrics.jsonl", "outer_iteration", start)
    trim_records(run_dir / "events.jsonl", "outer_iteration", start)
    return trim_records(run_dir / "metrics.jsonl", "outer_iteration", start) or {}


def _events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def figure(run_dir: Path, size: int, score: str, title: str) -> Any:
    """Each member's population score over outer-training time (the paper's Figure 2, left)."""
    from lopt.results import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    key = f"eval/population/{score}"
    for i in range(size):
        path = run_dir / "members" / str(i) / "metrics.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
        points = [(r["time/wall_s"] / 60, r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, label=f"member {i}")
    ax.set_xlabel("outer-training time (min)")
    ax.set_ylabel(f"mean {score} over the evaluation tasks")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(cfg: DictConfig, job: Job, c: Any, console: Console, t_command: float) -> dict[str, Any]:
    """Train the population `c.population` describes in `job.dir` (resuming a run there)."""
    from lopt.commands.meta_train import load_data, nonfinite_error

    s, p = c.settings, c.population
    prog = program(c)
    job.dir = resume.run_directory(s.resume, job.dir)
    fresh = initial_state(prog, p, s.seed)  # also the layout a checkpoint is restored into
    restored = _restore(job.dir, cfg, fresh, s.outer_iterations)
    dataset = distributed.put(load_data(c, job), distributed.replicated(job.mesh))
    state = distributed.put(fresh if restored is None else restored, distributed.replicated(job.mesh))  # as
    # the outer iteration's outputs are placed, so that its program compiles once
    del fresh, restored
    start = int(state.iteration)
    assignments = pbt.Assignments(tuple(int(o) for o in np.asarray(state.outer)),
                                  tuple(int(n) for n in np.asarray(state.trunc_length)))
    key = state.key
    evaluator = periodic.Evaluator(c.eval_plan, c.trainer.lopt, c.trainer.lopt.init_theta(jax.random.PRNGKey(0)),
                                   job.mesh, console, job.main)
    scorer = Scorer(evaluator, p.score)
    engine = make_engine(p, prog, dataset, state)
    del state  # its members now live in the engine
    group = job.cfg.tracking.group or f"population-{job.dir.name}"
    job.cfg.tracking.group = group  # the population's W&B run and its members' in one group
    job.write_config()
    last = _trim(job.dir, p.size, start) if job.main else {}
    events = _events(job.dir) if job.main else []
    ckpt = checkpoint.Checkpointer(job.dir / "checkpoints")

    def snapshot(iteration: int) -> PopulationState:
        members, trainers = engine.state()
        return PopulationState(members, trainers, jnp.asarray(assignments.outer, jnp.int32),
                               jnp.asarray(assignments.trunc_length, jnp.int32), key,
                               jnp.asarray(iteration, jnp.int32))

    def draw() -> None:  # population.png, from the members' logged evaluations
        if s.eval.every and job.main:
            job.save_figure(figure(job.dir, p.size, p.score,
                                   figures.title(",".join(c.trainer.names), job.dir,
                                                 f"population of {p.size} {cfg['lopt']['name']} ({p.outer})")),
                            "population.png")

    def steps_per_iteration() -> int:  # inner steps of one outer iteration, all members
        return sum(prog.at(n, None).inner_steps_per_iteration for n in assignments.trunc_length)

    try:
        with job.tracker("population") as tracker, _member_trackers(job, p.size, group) as trackers:
            if start:
                console.print(f"Resuming {job.dir} from outer iteration {start}.", soft_wrap=True)
            console.print(f"population: {p.size} members, outer={p.outer}, backend={p.backend}, assignments "
                          f"{list(assignments.outer)}, truncation lengths {list(assignments.trunc_length)}",
                          highlight=False, soft_wrap=True)
            t_start = time.perf_counter()
            before = float(last.get("time/wall_s", 0.0))
            first_done: float | None = None
            window_t = 0.0
            window_it, window_steps, eval_s0 = start, 0, scorer.seconds

            def wall() -> float:
                return before + time.perf_counter() - t_start

            for it in range(start + 1, s.outer_iterations + 1):
                report = engine.advance(assignments.outer, assignments.trunc_length, (it - 1) % p.sync_every == 0)
                window_steps += steps_per_iteration()
                if first_done is None:
                    jax.block_until_ready(report)
                    window_t = first_done = time.perf_counter()
                    window_it, window_steps = it, 0
                if it % s.log_every == 0 or it == s.outer_iterations:
                    rows = member_records(report, p.size)
                    now = time.perf_counter()
                    spent = now - window_t - (scorer.seconds - eval_s0)
                    rate = window_steps / spent if it > window_it else float("nan")
                    for i, row in enumerate(rows):
                        trackers[i].log({"outer_iteration": it, **row, "population/outer": assignments.outer[i],
                                         "population/trunc_length": assignments.trunc_length[i],
                                         "time/wall_s": wall()}, step=it)
                    last = {"outer_iteration": it, "outer/loss": float(np.nanmin([r["outer/loss"] for r in rows])),
                            "perf/inner_steps_per_s": rate,
                            "perf/member_inner_steps_per_s": rate / p.size, "time/wall_s": wall()}
                    tracker.log(last, step=it)
                    window_t, window_it, window_steps, eval_s0 = now, it, 0, scorer.seconds
                    streaks = [int(r["outer/nonfinite_streak"]) for r in rows]
                    if min(streaks) >= s.max_nonfinite_iterations:
                        if ckpt.latest_step() != it:
                            ckpt.save(it, snapshot(it))
                        draw()
                        tracker.summary({"stopped": "non-finite losses", "stopped_at_iteration": it})
                        raise nonfinite_error(it, min(streaks), s, ckpt, "of every member's tasks",
                                              "lopt.step_mult" if p.outer == SELF else "outer_opt.lr")
                evaluate_all = bool(s.eval.every) and (it % s.eval.every == 0 or it == s.outer_iterations)
                if evaluate_all:
                    for i, (_, record) in enumerate(scorer(engine, it, range(p.size))):
                        trackers[i].log({"outer_iteration": it, **record, "time/wall_s": wall()}, step=it)
                if it % p.exploit_every == 0 and it < s.outer_iterations:
                    key, k_draw = jax.random.split(key)
                    draws = pbt.draws(k_draw, p.size)
                    scores = [v for v, _ in scorer(engine, it, draws.pair)]
                    assignments, ev = pbt.exploit_explore(assignments, scores, draws, p.trunc_lengths,
                                                          p.p_reassign, p.p_resample_length, p.higher_is_better)
                    engine.restart(ev.loser, ev.winner, assignments.outer)
                    first_wins = ev.winner == draws.pair[0]
                    row = {"outer_iteration": it, **ev._asdict(),
                           "winner_score": scores[0] if first_wins else scores[1],
                           "loser_score": scores[1] if first_wins else scores[0]}
                    events.append(row)
                    if job.main:
                        with open(job.dir / "events.jsonl", "a", encoding="utf-8") as f:
                            f.write(json.dumps(row) + "\n")
                    tracker.table("population/events", EVENT_COLUMNS, [[e[k] for k in EVENT_COLUMNS] for e in events])
                    console.print(f"exploit at {it}: member {ev.winner} ({row['winner_score']:.4g}) beats member "
                                  f"{ev.loser} ({row['loser_score']:.4g}); {ev.loser} is now trained by member "
                                  f"{ev.outer} with truncations of {ev.trunc_length}", highlight=False)
                if s.checkpoint_every and it % s.checkpoint_every == 0:
                    ckpt.save(it, snapshot(it))
            if ckpt.latest_step() != s.outer_iterations:
                ckpt.save(s.outer_iterations, snapshot(s.outer_iterations))
            final = scorer(engine, s.outer_iterations, range(p.size))
            values = [v for v, _ in final]
            best = pbt.best(values, p.higher_is_better)
            checkpoint.save_tree(job.dir / "final_theta", engine.thetas([best])[0])  # collective (orbax)
            end = time.perf_counter()
            summary: dict[str, Any] = {
                "task": ",".join(c.trainer.names), "lopt": cfg["lopt"]["name"], "population": p.size,
                "outer": p.outer, "backend": p.backend, "outer_iterations": s.outer_iterations,
                "resumed_from_iteration": start, "exploit_steps": len(events),
                "best_member": best, f"best {p.score}": values[best],
                f"{p.score} per member": [round(v, 5) for v in values],
                "first_iteration_s": None if first_done is None else first_done - t_command,
                "wall_s": end - t_start, "eval_s": scorer.seconds,
                "inner_steps_per_s": last.get("perf/inner_steps_per_s"),
                "run_dir": str(job.dir),
                **job.wrote("config.yaml, metrics.jsonl, events.jsonl, members/, checkpoints/, final_theta/"
                            + (", population.png" if s.eval.every else "")),
            }
            draw()
            tracker.summary(summary)
            return summary
    finally:
        ckpt.close()
        engine.close()
