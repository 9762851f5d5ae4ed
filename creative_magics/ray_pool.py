"""The Ray backend of creative_magics.batch: a pool of Ray actors, one per GPU (or `workers` of them on
CPUs), each running the same Python API in its own process with its own model cache. The pool stays
alive in the session, so a second batch finds its models warm. Items go to the workers as they free
up (ray.wait); an item whose worker died (a killed process, an out-of-memory kill) goes to another.

Ray (the `[ray]` extra) is imported on first use only.
"""

import collections
import os

from .errors import CreativeError, first_line

# What a worker process takes from this one: where models live, the profile, offline mode.
ENV_PREFIXES = ("CREATIVE_MAGICS_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "PYTHONPATH")
RETRIES = 2  # times an item goes to another worker after its worker died
INSTALL = "Ray is not installed: pip install 'creative_magics[ray]'"

_pools = {}  # address -> Pool (one per cluster: two would share, and wait on, the same CPUs)
_started_here = [False]  # this process called ray.init (so shutdown() stops it)


def _ray():
    try:
        import ray
    except ImportError:
        raise CreativeError(INSTALL) from None
    return ray


def settings_of(session):
    """The options a worker runs with: this session's (%config), with the profile as decided here."""
    settings = session.settings
    out = {}
    for name in settings.traits(config=True):
        value = getattr(settings, name)
        if isinstance(value, (str, int, float, bool, dict, list, tuple, type(None))):
            out[name] = value
    out["profile"] = session.effective_profile()
    return out


class Worker:
    """One Ray actor: a session of its own (settings from the driver), running items through the Python API."""

    def __init__(self, settings, env):
        os.environ.update(env)
        from . import session as session_module
        from .settings import Settings

        options = Settings()
        for name, value in settings.items():
            try:
                setattr(options, name, value)
            except Exception:  # an option this version does not have, or that is only valid where it was set
                pass
        options.keep_results = 1  # the driver keeps the results; the worker only its models
        session_module.reset()
        self.session = session_module.current()
        self.session.attach(options)
        self.items_done = 0
        self.items_failed = 0

    def run(self, task, index, item, defaults, given_as):
        """(index, "ok", result) or (index, "failed", one line): the item as a call of the task's Python API,
        its values over `defaults` (as batches.call_item does here)."""
        from . import api

        try:
            if not isinstance(item, dict):
                raise CreativeError(f"an item is a dict of {task} parameters or a string, not {type(item).__name__}")
            result = api.TASKS[task](**{**(defaults or {}), **item}, _given_as=given_as)
        except Exception as err:
            self.items_failed += 1
            return index, "failed", first_line(err)
        self.items_done += 1
        return index, "ok", result

    def pid(self):
        return os.getpid()

    def status(self):
        from .devices import resolve_device

        rows = self.session.cache.table()
        return {
            "pid": os.getpid(), "node": os.uname().nodename, "device": str(resolve_device(self.session.settings.device)),
            "warm": [row["name"] for row in rows], "loads": sum(row["loads"] for row in rows), "items": self.items_done,
            "failed": self.items_failed,
        }


class Pool:
    """The actors of one address, kept for the next batch."""

    def __init__(self, address, workers, session):
        ray = _ray()
        self.address = address
        if not ray.is_initialized():
            if address is None:
                ray.init(address="local", num_cpus=workers or min(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
                _started_here[0] = True
            else:
                ray.init(address=address, log_to_driver=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = resources.get("CPU", 1)
        size = workers or gpus or max(1, int(cpus))
        options = {"num_gpus": 1} if gpus and (workers is None or workers <= gpus) else {"num_cpus": min(1.0, cpus / size)}
        self.wanted, self.options, self.session = size, options, session
        self.actors = []
        self.dead = 0  # workers lost (killed, out of memory) since the pool started
        self.started = 0
        self.top_up()

    def top_up(self):
        """Start workers until the pool has its size again (at the start of a batch: a dead worker is replaced)."""
        ray = _ray()
        env = {name: value for name, value in os.environ.items() if name.startswith(ENV_PREFIXES)}
        actor = ray.remote(max_restarts=0, max_task_retries=0)(Worker)
        while len(self.actors) < self.wanted:
            self.actors.append(actor.options(**self.options).remote(settings_of(self.session), env))
            self.started += 1

    @property
    def size(self):
        return len(self.actors)

    def pids(self):
        ray = _ray()
        return ray.get([a.pid.remote() for a in self.actors])

    def table(self):
        """[status dict] of each live worker."""
        ray = _ray()
        rows = []
        for actor in list(self.actors):
            try:
                rows.append(ray.get(actor.status.remote(), timeout=30))
            except Exception:  # a dead worker, or Ray shut down behind our back
                self._drop(actor)
        return rows

    def stop(self):
        """End the workers; returns their PIDs (to wait for)."""
        ray = _ray()
        pids = []
        for actor in self.actors:
            try:
                pids.append(ray.get(actor.pid.remote(), timeout=10))
            except Exception:
                pass
            try:
                ray.kill(actor)
            except Exception:
                pass
        self.actors = []
        return pids

    def _drop(self, actor):
        if actor in self.actors:
            self.actors.remove(actor)
            self.dead += 1

    def run(self, task, items, given_as, deliver, failed):
        """Each item ({index: values}) on the first free worker; slots filled through `deliver` as results
        arrive, in any order. Returns True when Ctrl-C stopped it (the items not done are cancelled)."""
        ray = _ray()
        self.top_up()
        pending = collections.deque(sorted(items))
        tries = collections.Counter()
        flying = {}  # ref -> (actor, index)
        free = list(self.actors)
        try:
            while pending or flying:
                while pending and free:
                    actor, index = free.pop(0), pending.popleft()
                    flying[actor.run.remote(task, index, items[index], None, given_as)] = (actor, index)
                if not flying:  # every worker died
                    for index in pending:
                        deliver(index, failed(index, "every Ray worker died before it ran"))
                    return False
                ready, _ = ray.wait(list(flying), num_returns=1)
                for ref in ready:
                    actor, index = flying.pop(ref)
                    try:
                        _, status, payload = ray.get(ref)
                    except ray.exceptions.RayActorError as err:  # the worker died: the item goes to another
                        self._drop(actor)
                        tries[index] += 1
                        if tries[index] > RETRIES:
                            deliver(index, failed(index, f"its Ray worker died {tries[index]} times: {first_line(err)}"))
                        else:
                            pending.appendleft(index)
                        continue
                    except ray.exceptions.RayError as err:
                        free.append(actor)
                        deliver(index, failed(index, first_line(err)))
                        continue
                    free.append(actor)
                    deliver(index, failed(index, payload) if status == "failed" else payload)
        except KeyboardInterrupt:
            # The items not yet sent are cancelled; those in flight finish on their workers and are let go (ray.cancel
            # would interrupt a worker mid-call, and may take the process and its warm models with it).
            return True
        return False


def pool(address=None, workers=None, session=None):
    """The pool for `address` (None: a local Ray started here), made on first use and kept; asking for
    another number of workers replaces it (its workers stop, the new ones load their models again)."""
    found = _pools.get(address)
    if found is not None and workers is not None and workers != found.wanted:
        found.stop()
        found = None
    if found is None:
        found = _pools[address] = Pool(address, workers, session)
    return found


def pools():
    return dict(_pools)


def workers_table():
    """Rows for %creative workers: one per live worker of every pool."""
    rows = []
    for address, each in _pools.items():
        for row in each.table():
            rows.append({"address": address or "local", **row})
    return rows


def shutdown(wait_s=30.0):
    """Stop the workers (and wait until their processes are gone), and Ray itself when this process started it."""
    import sys
    import time

    ray = sys.modules.get("ray")
    pids = [pid for each in _pools.values() for pid in each.stop()]
    _pools.clear()
    if ray is not None and _started_here[0] and ray.is_initialized():
        ray.shutdown()
    _started_here[0] = False
    deadline = time.monotonic() + wait_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _alive(pid):
    """A process that exists and is not a zombie (Linux /proc; elsewhere, signal 0)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
