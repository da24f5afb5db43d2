"""Evaluation: the metrics of the paper's Table 1 on predicted and reference videos."""
