"""OKDHP trainer: multi-branch online distillation of a compact top-down pose student."""
