"""A small code location for the instance tests: a job whose op meets other runs at a barrier,
launched in a burst by a sensor (on by default) so only the daemon is needed."""

import os
import time

import dagster as dg

BURST = int(os.environ.get("TOY_BURST_RUNS", "4"))
SLEEP_S = float(os.environ.get("TOY_SLEEP_S", "1"))
BARRIER = os.environ.get("TOY_BARRIER_DIR", "")
BARRIER_WAIT_S = 120.0


@dg.op
def hold(context: dg.OpExecutionContext) -> None:
    """Check in at the barrier, wait (bounded) until another run is in its op too, hold, leave.
    Run workers start seconds apart on a busy machine; the barrier makes overlap depend only
    on whether the coordinator lets two runs be active at once."""
    mine = os.path.join(BARRIER, context.run_id) if BARRIER else ""
    if mine:
        open(mine, "w").close()
    started = time.time()
    while mine and len(os.listdir(BARRIER)) < 2 and time.time() < started + BARRIER_WAIT_S:
        time.sleep(0.2)
    time.sleep(SLEEP_S)
    ended = time.time()
    if mine:
        os.remove(mine)
    context.log_event(dg.AssetMaterialization(
        asset_key="toy_output", metadata={"started_at": started, "ended_at": ended, "pid": os.getpid()}))


@dg.job
def toy_job() -> None:
    hold()


@dg.sensor(job=toy_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def burst(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    return [dg.RunRequest(run_key=f"burst-{i}") for i in range(BURST)]  # run keys: one burst only


defs = dg.Definitions(jobs=[toy_job], sensors=[burst])
