"""The pool's live jobs on one connection, each with the solutions already submitted for it.

Duplicates are tracked per live job, so the memory a connection holds ends with its
jobs: a job replaced by ``clean_jobs`` or pushed out past ``max_jobs`` takes its
solutions with it (a share for it is stale anyway). A job's set is made with its first
share (an idle miner receives jobs all day and submits none) and holds at most
``max_shares`` solutions; past that the job is full, and the session refuses its shares.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

from sharelog.work import Job


class Seen(enum.Enum):
    FIRST = "first"  # a new solution: remembered
    REPEAT = "repeat"  # submitted before: a duplicate
    FULL = "full"  # the job holds as many solutions as allowed: neither known nor kept


class LiveJob:
    __slots__ = ("difficulty", "job", "solutions")

    def __init__(self, job: Job, difficulty: float) -> None:
        self.job = job
        self.difficulty = difficulty  # the target the job was sent with
        self.solutions: set[bytes] | None = None

    def remember(self, solution: bytes, max_shares: int) -> Seen:
        if self.solutions is None:
            self.solutions = set()
        elif solution in self.solutions:
            return Seen.REPEAT
        if len(self.solutions) >= max_shares:
            return Seen.FULL
        self.solutions.add(solution)
        return Seen.FIRST


class LiveJobs:
    __slots__ = ("_jobs", "max_jobs")

    def __init__(self, max_jobs: int) -> None:
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, LiveJob] = OrderedDict()

    def add(self, job: Job, difficulty: float) -> None:
        if job.clean_jobs:
            self._jobs.clear()
        self._jobs[job.job_id] = LiveJob(job, difficulty)
        while len(self._jobs) > self.max_jobs:
            self._jobs.popitem(last=False)

    def get(self, job_id: str) -> LiveJob | None:
        return self._jobs.get(job_id)
