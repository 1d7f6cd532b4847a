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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf
from rich.console import Console

from lopt import figures
from lopt.commands import outer_loop
from lopt.commands.base import Job
from lopt.commands.meta_components import PopulationComponents
from lopt.evaluation import periodic
from lopt.figures.population import figure as population_figure
from lopt.io import resume
from lopt.io.results import read_jsonl
from lopt.io.tracking import NullTracker, Tracker
from lopt.meta_trainer import OuterStep
from lopt.platform import distributed
from lopt.population import pbt
from lopt.population.engine import Engine, LocalEngine, PopulationState
from lopt.population.member import MemberProgram, member
from lopt.population.settings import SELF, PopulationSettings

EVENT_COLUMNS = ["outer_iteration", "winner", "loser", "winner_score", "loser_score", "outer", "trunc_length",
                 "reassigned", "resampled"]


def program(c: PopulationComponents) -> MemberProgram:
    """The member program of a meta-train run's components `c` (their `population` set)."""
    p = c.population
    return MemberProgram(c.trainer, p.outer == SELF, p.max_update)


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
def _member_trackers(job: Job, size: int) -> Iterator[Sequence[Tracker | NullTracker]]:
    """One tracker per member (members/<i>/metrics.jsonl and a W&B run each, in the job's W&B
    group, with the config the job records), finished with the job's exit status (as `Job.tracker`)."""
    if not job.main:
        yield [NullTracker() for _ in range(size)]
        return
    config = cast(dict[str, Any], OmegaConf.to_container(job.recorded_config(), resolve=True))
    trackers: list[Tracker] = []
    try:
        for i in range(size):
            directory = job.dir / "members" / str(i)
            directory.mkdir(parents=True, exist_ok=True)
            trackers.append(job.shared.tracking.open(directory, {**config, "member": i}, "population-member",
                                                     job.console, job.group))
        yield trackers
    except BaseException as err:
        for t in trackers:
            t.finish(130 if isinstance(err, KeyboardInterrupt) else 1)
        raise
    for t in trackers:
        t.finish(0)


def _trim(job: Job, size: int, start: int) -> dict[str, Any]:
    """Drop the records and events of iterations after `start` (a resumed run logs them again);
    the population's last record kept."""
    for i in range(size):
        job.trim_records(f"members/{i}/metrics.jsonl", start)
    job.trim_records("events.jsonl", start)
    return job.trim_records("metrics.jsonl", start)


class Population:
    """The population as the outer loop's `Mode`: the engine advances every member; after each
    logged iteration every member is evaluated every `eval.every` iterations and two are compared
    every `exploit_every` (the loser takes the winner's theta and outer optimizer); the final theta
    is the best member's at the last evaluation."""

    name = "population"
    nonfinite_whose = "of every member's tasks"

    def __init__(self, c: PopulationComponents, job: Job, prog: MemberProgram, engine: Engine, state: PopulationState,
                 scorer: Scorer, tracker: Tracker | NullTracker, trackers: Sequence[Tracker | NullTracker],
                 console: Console):
        self.c, self.p, self.job, self.prog, self.engine = c, c.population, job, prog, engine
        self.scorer, self.tracker, self.trackers, self.console = scorer, tracker, trackers, console
        self.nonfinite_lower = "lopt.step_mult" if self.p.outer == SELF else "outer_opt.lr"
        self.assignments = pbt.Assignments(tuple(int(o) for o in np.asarray(state.outer)),
                                           tuple(int(n) for n in np.asarray(state.trunc_length)))
        self.key = state.key
        self.events = read_jsonl(job.dir / "events.jsonl") if job.main else []
        self.final_scores: list[float] = []  # every member's score at the last iteration (final_theta)
        self.best: int | None = None  # the member whose theta is final_theta

    def advance(self, it: int) -> OuterStep:
        return self.engine.advance(self.assignments.outer, self.assignments.trunc_length,
                                   (it - 1) % self.p.sync_every == 0)

    def inner_steps(self) -> int:  # every member's, at its truncation length
        return sum(self.prog.at(n, None).inner_steps_per_iteration for n in self.assignments.trunc_length)

    def log(self, it: int, report: OuterStep, rates: dict[str, float], wall_s: float) -> outer_loop.Logged:
        rows = member_records(report, self.p.size)
        for i, row in enumerate(rows):
            self.trackers[i].log({"outer_iteration": it, **row, "population/outer": self.assignments.outer[i],
                                  "population/trunc_length": self.assignments.trunc_length[i],
                                  "time/wall_s": wall_s}, step=it)
        rate, loss = rates["inner_steps_per_s"], float(np.nanmin([r["outer/loss"] for r in rows]))
        self.tracker.log({"outer_iteration": it, "outer/loss": loss, "perf/inner_steps_per_s": rate,
                          "perf/member_inner_steps_per_s": rate / self.p.size, "time/wall_s": wall_s}, step=it)
        return outer_loop.Logged(loss, min(int(r["outer/nonfinite_streak"]) for r in rows))

    def between(self, it: int, wall_s: float) -> float:
        s, seconds = self.c.settings, self.scorer.seconds
        if s.eval.every and (it % s.eval.every == 0 or it == s.outer_iterations):
            for i, (_, record) in enumerate(self.scorer(self.engine, it, range(self.p.size))):
                self.trackers[i].log({"outer_iteration": it, **record, "time/wall_s": wall_s}, step=it)
        if it % self.p.exploit_every == 0 and it < s.outer_iterations:
            self._exploit(it)
        return self.scorer.seconds - seconds

    def _exploit(self, it: int) -> None:
        """Two members drawn and compared; the loser takes the winner's theta and outer optimizer."""
        p = self.p
        self.key, k_draw = jax.random.split(self.key)
        draws = pbt.draws(k_draw, p.size)
        scores = [v for v, _ in self.scorer(self.engine, it, draws.pair)]
        self.assignments, ev = pbt.exploit_explore(self.assignments, scores, draws, p.trunc_lengths, p.p_reassign,
                                                   p.p_resample_length, p.higher_is_better)
        self.engine.restart(ev.loser, ev.winner, self.assignments.outer)
        first_wins = ev.winner == draws.pair[0]
        row = {"outer_iteration": it, **ev._asdict(), "winner_score": scores[0] if first_wins else scores[1],
               "loser_score": scores[1] if first_wins else scores[0]}
        self.events.append(row)
        if self.job.main:
            with open(self.job.dir / "events.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        self.tracker.table("population/events", EVENT_COLUMNS, [[e[k] for k in EVENT_COLUMNS] for e in self.events])
        self.console.print(f"exploit at {it}: member {ev.winner} ({row['winner_score']:.4g}) beats member "
                           f"{ev.loser} ({row['loser_score']:.4g}); {ev.loser} is now trained by member "
                           f"{ev.outer} with truncations of {ev.trunc_length}", highlight=False)

    def snapshot(self, it: int) -> PopulationState:
        members, trainers = self.engine.state()
        return PopulationState(members, trainers, jnp.asarray(self.assignments.outer, jnp.int32),
                               jnp.asarray(self.assignments.trunc_length, jnp.int32), self.key,
                               jnp.asarray(it, jnp.int32))

    def final_theta(self) -> Any:
        """The best member's theta, every member scored at the last iteration."""
        iterations = self.c.settings.outer_iterations
        self.final_scores = [v for v, _ in self.scorer(self.engine, iterations, range(self.p.size))]
        best = self.best = pbt.best(self.final_scores, self.p.higher_is_better)
        return self.engine.thetas([best])[0]

    def stopped(self) -> None:
        self.figure()

    def figure(self) -> None:
        """population.png, from the members' logged evaluations."""
        if self.c.settings.eval.every and self.job.main:
            title = figures.title(",".join(self.c.trainer.names), self.job.dir,
                                  f"population of {self.p.size} {self.c.lopt_name} ({self.p.outer})")
            self.job.save_figure(population_figure(self.job.dir, self.p.size, self.p.score, title), "population.png")


def run(job: Job, c: PopulationComponents, console: Console, t_command: float) -> dict[str, Any]:
    """Train the population `c.population` describes in `job.dir` (resuming a run there)."""
    s, p = c.settings, c.population
    prog = program(c)
    job.dir = resume.run_directory(s.resume, job.dir)
    fresh = initial_state(prog, p, s.seed)  # also the layout a checkpoint is restored into
    restored = outer_loop.restore(job.dir, job.cfg, fresh, s.outer_iterations)
    dataset = distributed.put(c.load_data(), distributed.replicated(job.mesh))
    state = distributed.put(fresh if restored is None else restored, distributed.replicated(job.mesh))  # as
    # the outer iteration's outputs are placed, so that its program compiles once
    del fresh, restored
    start = int(state.iteration)
    evaluator = periodic.Evaluator(cast(periodic.Plan, c.eval_plan), c.trainer.lopt,
                                   c.trainer.lopt.init_theta(jax.random.PRNGKey(0)), job.mesh, console, job.main)
    scorer = Scorer(evaluator, p.score)
    engine = make_engine(p, prog, dataset, state)
    job.group = job.group or f"population-{job.dir.name}"  # the population's W&B run and its members'
    job.write_config()
    last = _trim(job, p.size, start)
    try:
        with job.tracker("population") as tracker, _member_trackers(job, p.size) as trackers:
            mode = Population(c, job, prog, engine, state, scorer, tracker, trackers, console)
            del state  # its members now live in the engine
            console.print(f"population: {p.size} members, outer={p.outer}, backend={p.backend}, assignments "
                          f"{list(mode.assignments.outer)}, truncation lengths {list(mode.assignments.trunc_length)}",
                          highlight=False, soft_wrap=True)
            summary = outer_loop.run(mode, s.timing, start, job.dir, tracker, console,
                                     float(last.get("time/wall_s", 0.0)), t_command)
            best = cast(int, mode.best)  # set by final_theta, at the loop's end
            summary = {"task": ",".join(c.trainer.names), "lopt": c.lopt_name, "population": p.size,
                       "outer": p.outer, "backend": p.backend, **summary, "exploit_steps": len(mode.events),
                       "best_member": best, f"best {p.score}": mode.final_scores[best],
                       f"{p.score} per member": [round(v, 5) for v in mode.final_scores],
                       **job.wrote("config.yaml, metrics.jsonl, events.jsonl, members/, checkpoints/, final_theta/"
                                   + (", population.png" if s.eval.every else ""))}
            mode.figure()
            tracker.summary(summary)
            return summary
    finally:
        engine.close()
