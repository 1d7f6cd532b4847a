"""Scoring optimizers on task suites against per-task tuned baselines, the way the field does
(Metz et al. 2022, "VeLO: Training versatile learned optimizers by scaling up", arXiv:2211.09760;
Moudgil et al. 2025, "Celo: training versatile learned optimizers on a compute diet", TMLR).

`suite` reads a suite config; `baselines` stores each task's sweep under a key of what it is a
baseline for, and `tuning` makes those sweeps; `scores` turns training curves into VeLO's per-task
scores and `aggregate` summarizes a suite with interquartile means and stratified bootstrap
intervals; `scoring` evaluates one task (its program compiled once, any theta); `report` prints
a suite evaluation's tables; `periodic` runs evaluations during meta-training. Their figures are
in `lopt.figures` (`suite`, `meta_training`).
"""
