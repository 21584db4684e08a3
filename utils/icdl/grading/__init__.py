"""Grading submitted exercise notebooks: what ``python -m icdl.grade`` runs.

==============  ==============================================================
module          job
==============  ==============================================================
``cli``         the command: read every submission, grade each, write the CSV
``course``      the course code, read once: questions, answers, stand-in checks
``submissions`` reading submissions safely; which exercise; flags for a look
``harness``     the grader's cells, and verifying the harness's signed output
``harness_main`` the harness itself (its source runs inside the kernel)
``worker``      runs one notebook in a fresh kernel (its source runs in a child)
``procs``       process control: subreaper, memory hidden, killing leftovers
``output``      the CSV (atomic, never through a link) and feedback files
==============  ==============================================================
"""
