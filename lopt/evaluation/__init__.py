"""Scoring optimizers on task suites against per-task tuned baselines, the way the field does
(Metz et al. 2022, "VeLO: Training versatile learned optimizers by scaling up", arXiv:2211.09760;
Moudgil et al. 2025, "Celo: training versatile learned optimizers on a compute diet", TMLR).

`suite` reads a suite config, `baselines` stores each task's learning-rate sweep under a key of
what it is a baseline for, `scores` turns a training curve into VeLO's per-task scores, `aggregate`
summarizes a suite with interquartile means and stratified bootstrap intervals, and `runner`
trains a suite's tasks one compiled program per task.
"""
