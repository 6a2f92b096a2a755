"""Errors cross process boundaries (supervisors, Dask workers): they must pickle whole."""

from __future__ import annotations

import pickle

import tinycontainer as tc
from tinycontainer._errors import ContainerError, KernelError, LimitExceeded, SpecError


def test_errors_round_trip_through_pickle() -> None:
    spec = pickle.loads(pickle.dumps(SpecError("must be positive", field="memory")))
    assert (str(spec), spec.field) == ("memory: must be positive", "memory")
    limit = pickle.loads(pickle.dumps(LimitExceeded("oom", "out of memory")))
    assert (limit.reason, str(limit)) == ("oom", "out of memory")
    failed = pickle.loads(pickle.dumps(ContainerError(3, ["false"], b"out", b"err")))
    assert (failed.returncode, failed.cmd, failed.stderr) == (3, ["false"], b"err")
    timeout = pickle.loads(pickle.dumps(tc.TimeoutExpired(["sleep", "9"], 2.0, b"partial")))
    assert (timeout.reason, timeout.timeout, timeout.output) == ("wall-time", 2.0, b"partial")
    kernel = pickle.loads(pickle.dumps(KernelError(2, "mount", "/x")))
    assert (kernel.errno, kernel.syscall, kernel.filename) == (2, "mount", "/x")
